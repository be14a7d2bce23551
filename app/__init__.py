"""The push server, one floor per folder; imports only go down (checked by import-linter, ``make lint``).

    main, runtime, server, process   the composition: builds every service once and wires the edges
    ops/        operator tools: the CLI, migrations, seeding, the demo courier
    http/       the REST edge: controllers, middleware, the OpenAPI document
    realtime/   the real-time edge: /ws, /sse, tickets, sessions, presence, the uvicorn fast path
    services/   the domain: orders, notifications, insights, webhooks, the outbox (models/ beneath)
    platform/   settings, database, auth and JWT, rate limits, logs, metrics, errors and problem+json

See docs/architecture.md for the picture and two walks through it.
"""

from __future__ import annotations

__all__: list[str] = []
