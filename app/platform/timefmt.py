"""Times on the wire: RFC 3339 in UTC with milliseconds and ``Z``, as SPEC's JSON asks."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["rfc3339", "utc_now"]


def utc_now() -> datetime:
    """Now, timezone-aware UTC."""
    return datetime.now(UTC)


def rfc3339(moment: datetime | None) -> str | None:
    """``2026-11-26T00:47:30.123Z``; naive datetimes are taken as UTC (how SQLite hands them back)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
