"""Operator tools: the ``python -m app`` CLI, migrations, seeding and the demo courier."""

__all__: list[str] = []
