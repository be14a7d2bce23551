"""The relay's latency histogram: counted on the hot path without prometheus_client, exported at scrape."""

from __future__ import annotations

import math

from app.metrics import Metrics
from channels import LatencyHistogram


def test_observations_land_in_the_first_bucket_whose_bound_they_do_not_exceed() -> None:
    histogram = LatencyHistogram(bounds=(0.001, 0.01, 1.0))
    for value in (0.0005, 0.001, 0.0011, 0.01, 0.5, 1.0, 7.0):
        histogram.observe(value)
    assert histogram.counts == [2, 2, 2, 1]
    assert histogram.cumulative() == [(0.001, 2), (0.01, 4), (1.0, 6), (math.inf, 7)]
    assert math.isclose(histogram.total, 0.0005 + 0.001 + 0.0011 + 0.01 + 0.5 + 1.0 + 7.0)


def test_scrape_exposes_cumulative_buckets_sum_and_count() -> None:
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
