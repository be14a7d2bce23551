"""Development secrets, generated once and kept in a git-ignored file.

Every local process (the server, ``python -m app token``, a second worker) reads the same file,
so a token minted by the CLI is accepted by the server. Production refuses these (see settings).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import msgspec

__all__ = ["DevSecrets", "load_or_create_dev_secrets"]


class DevSecrets(msgspec.Struct, frozen=True):
    """The generated development secrets."""

    jwt_secret: str
    webhook_secret: str


def load_or_create_dev_secrets(path: Path) -> DevSecrets:
    """Read the dev secrets file, creating it (mode 0600) on first use.

    Two processes starting together agree on one file.
    """
    try:
        return msgspec.json.decode(path.read_bytes(), type=DevSecrets)
    except FileNotFoundError:
        pass
    fresh = DevSecrets(jwt_secret=secrets.token_urlsafe(32), webhook_secret=secrets.token_urlsafe(32))
    # Write a private temporary file, then link it into place: the link fails if another process
    # won the race, and nobody ever reads a half-written file.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(msgspec.json.encode(fresh))
    try:
        os.link(temporary, path)
    except FileExistsError:
        return msgspec.json.decode(path.read_bytes(), type=DevSecrets)
    finally:
        temporary.unlink()
    return fresh
