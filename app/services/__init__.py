"""Domain services: the rules of users, orders, notifications and insights, independent of HTTP."""

__all__: list[str] = []
