"""Times on the wire: RFC 3339 in UTC with milliseconds and ``Z``, as SPEC's JSON asks."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["parse_rfc3339", "rfc3339", "utc_now"]


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


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 time with an explicit offset into UTC.

    Raises:
        ValueError: for anything without a date, a time and an offset.
    """
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("a time needs an offset, e.g. 2026-01-02T03:04:05Z")
    return moment.astimezone(UTC)
