"""Prometheus text rendering."""

from __future__ import annotations

from firmware_bridge.metrics import BridgeMetrics, Counter, Histogram


def test_counter_with_labels_and_escaping():
    counter = Counter("x_total", "Things", ["kind"])
    counter.inc(kind='a"b')
    counter.inc(2, kind="plain")
    assert counter.render() == [
        "# HELP x_total Things",
        "# TYPE x_total counter",
        'x_total{kind="a\\"b"} 1',
        'x_total{kind="plain"} 2',
    ]


def test_histogram_is_cumulative():
    histogram = Histogram("lag_seconds", "Lag", [0.1, 1.0])
    for value in (0.05, 0.5, 0.7, 3.0):
        histogram.observe(value)
    lines = histogram.render()
    assert 'lag_seconds_bucket{le="0.1"} 1' in lines
    assert 'lag_seconds_bucket{le="1"} 3' in lines
    assert 'lag_seconds_bucket{le="+Inf"} 4' in lines
    assert "lag_seconds_count 4" in lines
    assert "lag_seconds_sum 4.25" in lines


def test_bridge_metrics_render_every_series():
    metrics = BridgeMetrics()
    metrics.dead_letters.inc(kind="crc")
    text = metrics.render()
    for name in (
        "celltrail_bridge_messages_total",
        "celltrail_bridge_readings_forwarded_total",
        "celltrail_bridge_dead_letters_total",
        "celltrail_bridge_buffer_depth_batches",
        "celltrail_bridge_forward_lag_seconds",
        "celltrail_bridge_newest_reading_age_seconds",
    ):
        assert f"# TYPE {name} " in text
    assert 'celltrail_bridge_dead_letters_total{kind="crc"} 1' in text
    assert text.endswith("\n")
