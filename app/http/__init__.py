"""The REST edge: Litestar controllers, middleware, the request class and the OpenAPI document."""

__all__: list[str] = []
