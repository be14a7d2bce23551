"""Litestar controllers: HTTP edges that parse, authorize and call services."""

__all__: list[str] = []
