"""Structured logs carry the request id; production writes one JSON object per line."""

from __future__ import annotations

import io
import json
import logging

from app.platform.logs import JsonFormatter, configure_logging
from app.platform.request_context import request_id_for


def test_json_lines_carry_request_id_and_extras() -> None:
    """A record logged while serving a request becomes one JSON line with its requestId and extra fields."""
    configure_logging("INFO", json_lines=True)
    stream = io.StringIO()
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    assert isinstance(handler.formatter, JsonFormatter)
    request_id_for({"headers": [(b"x-request-id", b"req-abcdef12")]})
    logging.getLogger("test").warning("order %s moved", "ord_1", extra={"orderId": "ord_1"})
    line = stream.getvalue().strip().splitlines()[-1]
    entry = json.loads(line)
    assert entry["message"] == "order ord_1 moved"
    assert entry["requestId"] == "req-abcdef12"
    assert entry["orderId"] == "ord_1"
    assert entry["level"] == "WARNING"
    logging.getLogger().handlers.clear()
