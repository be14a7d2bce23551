"""The real-time edges: /ws, SSE, tickets and channel access, adapting ``channels`` to Litestar and the domain."""

__all__: list[str] = []
