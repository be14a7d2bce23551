"""What every floor above stands on: settings, database, auth and JWT, rate limits, logs, metrics,
outage tracking, errors and their problem+json rendering, ids, time formats, pagination cursors."""

__all__: list[str] = []
