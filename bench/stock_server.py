"""``python -m bench.stock_server IMPL``: ``python -m app serve`` on stock uvicorn with the ws implementation IMPL.

Bench-only (``python -m bench --ws wsproto``): the product's fallback (``WS_FAST_PATH=0``) is
websockets-sansio, and an operator has no reason to pick another, so the choice is not a setting.
Everything else is ``app.server.uvicorn_options`` from the same environment.
"""

from __future__ import annotations

import sys

__all__ = ["main"]

STOCK_WS = ("websockets-sansio", "wsproto", "websockets")


def main(argv: list[str]) -> int:
    """Serve the app with uvicorn's ``http="auto"`` and ``ws=argv[0]``."""
    if len(argv) != 1 or argv[0] not in STOCK_WS:
        print(f"usage: python -m bench.stock_server {{{','.join(STOCK_WS)}}}", file=sys.stderr)
        return 2
    import uvicorn

    from app.platform.logs import configure_logging
    from app.platform.settings import load_settings
    from app.server import uvicorn_options

    settings = load_settings()
    if settings.ws_fast_path:
        print("bench.stock_server: set WS_FAST_PATH=0 (the scope must lack push.frames)", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, json_lines=settings.is_production)
    options = {**uvicorn_options(settings), "http": "auto", "ws": argv[0]}
    uvicorn.run("app.main:create_app", factory=True, **options)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
