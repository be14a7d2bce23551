"""One controller per resource of SPEC's REST API; each handler gets its services by dependency injection."""

__all__: list[str] = []
