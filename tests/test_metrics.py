"""The relay's latency histogram: counted on the hot path without prometheus_client, exported at scrape."""

from __future__ import annotations

import math

from app.platform.metrics import Metrics
from channels import LatencyHistogram


def test_observations_land_in_the_first_bucket_whose_bound_they_do_not_exceed() -> None:
    """An observation counts in the first bucket whose bound it does not exceed (bounds inclusive); the sum adds up."""
    histogram = LatencyHistogram(bounds=(0.001, 0.01, 1.0))
    for value in (0.0005, 0.001, 0.0011, 0.01, 0.5, 1.0, 7.0):
        histogram.observe(value)
    assert histogram.counts == [2, 2, 2, 1]
    assert histogram.cumulative() == [(0.001, 2), (0.01, 4), (1.0, 6), (math.inf, 7)]
    assert math.isclose(histogram.total, 0.0005 + 0.001 + 0.0011 + 0.01 + 0.5 + 1.0 + 7.0)


def test_scrape_exposes_cumulative_buckets_sum_and_count() -> None:
    """The scrape shows the histogram's buckets cumulatively, +Inf included, with its sum and count."""
    metrics = Metrics()
    histogram = LatencyHistogram(bounds=(0.001, 0.0025, 1.0))
    metrics.histogram("push_test_latency_seconds", "A test histogram.", histogram)
    for value in (0.0001, 0.002, 0.002, 3.0):
        histogram.observe(value)
    text = metrics.render().decode()
    assert "# TYPE push_test_latency_seconds histogram" in text
    assert 'push_test_latency_seconds_bucket{le="0.001"} 1.0' in text
    assert 'push_test_latency_seconds_bucket{le="0.0025"} 3.0' in text
    assert 'push_test_latency_seconds_bucket{le="1.0"} 3.0' in text
    assert 'push_test_latency_seconds_bucket{le="+Inf"} 4.0' in text
    assert "push_test_latency_seconds_count 4.0" in text
    assert "push_test_latency_seconds_sum 3.0041" in text


def test_labelled_counters_are_exported_per_label_value() -> None:
    """counter_by exposes one sample per label value, zeros included."""
    metrics = Metrics()
    counts = {"not_utf8": 2}
    metrics.counter_by(
        "push_test_dropped", "Dropped.", "reason", lambda: {r: counts.get(r, 0) for r in ("not_utf8", "too_large")}
    )
    text = metrics.render().decode()
    assert "# TYPE push_test_dropped_total counter" in text
    assert 'push_test_dropped_total{reason="not_utf8"} 2.0' in text
    assert 'push_test_dropped_total{reason="too_large"} 0.0' in text


def test_relay_exports_dropped_producer_messages_by_every_reason(make_settings) -> None:
    """push_producer_events_dropped_total has a sample for every drop reason from the first scrape."""
    from app.platform.database import Database
    from app.realtime.relay import Relay
    from app.services.revocations import Revocations
    from channels import DROP_REASONS

    metrics = Metrics()
    settings = make_settings()
    relay = Relay(settings, None, None, metrics, Revocations(Database.from_url(settings.database_url)))
    relay.broker.stats.dropped["bad_ts"] = 3
    text = metrics.render().decode()
    for reason in DROP_REASONS:
        value = 3.0 if reason == "bad_ts" else 0.0
        assert f'push_producer_events_dropped_total{{reason="{reason}"}} {value}' in text
    assert "push_pubsub_message_errors_total 0.0" in text
    assert "push_events_malformed" not in text
