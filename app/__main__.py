"""``python -m app``: the operator CLI."""

from app.cli import main

main()
