"""Litestar controllers: HTTP edges that parse, authorize and call services."""
