"""``python -m app``: the operator CLI."""

from app.ops.cli import main

main()
