"""Where ``GET /metrics`` is served: loopback, apart from the API, unless told ``api``;
and the plain-Python instruments render as Prometheus expects.

The node side (a real listener, the API's port answering 404) is in
tests/e2e/test_telemetry_metrics.py.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from icn.infrastructure.settings import (
    DEFAULT_METRICS_ADDR,
    ConfigError,
    Settings,
    load_settings,
)
from icn.infrastructure.telemetry import Histogram, NodeMetrics, metrics_addr
from icn.interfaces.http.telemetry import serve_apart


def test_metrics_are_on_loopback_apart_from_the_api_by_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("ICN_METRICS_ADDR", raising=False)
    assert DEFAULT_METRICS_ADDR == "127.0.0.1:9464"
    assert metrics_addr() == DEFAULT_METRICS_ADDR
    settings = load_settings(tmp_path)
    assert settings.metrics_addr == DEFAULT_METRICS_ADDR
    [row] = [r for r in settings.rows() if r["key"] == "metrics_addr"]  # icn config show
    assert row == {"key": "metrics_addr", "env": "ICN_METRICS_ADDR",
                   "value": DEFAULT_METRICS_ADDR, "source": "default"}  # fmt: skip
    monkeypatch.setenv("ICN_METRICS_ADDR", " ")
    assert metrics_addr() == DEFAULT_METRICS_ADDR
    assert load_settings(tmp_path).metrics_addr == DEFAULT_METRICS_ADDR


def test_api_puts_them_on_the_api_port_and_an_address_is_taken_as_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ICN_METRICS_ADDR", "API")
    assert metrics_addr() is None
    assert load_settings(tmp_path).metrics_addr == "api"
    monkeypatch.setenv("ICN_METRICS_ADDR", "0.0.0.0:9100")
    assert metrics_addr() == "0.0.0.0:9100"
    assert Settings(metrics_addr="[::1]:9100").metrics_addr == "[::1]:9100"
    for bad in ("9100", "api-please", "host:port"):
        monkeypatch.setenv("ICN_METRICS_ADDR", bad)
        with pytest.raises(ConfigError, match="ICN_METRICS_ADDR"):
            load_settings(tmp_path)


def test_a_histogram_renders_cumulative_buckets_count_and_sum() -> None:
    metrics = NodeMetrics()
    try:
        h: Histogram = metrics.http_duration
        for seconds in (0.0005, 0.002, 0.002, 7.0, 11.0):  # 0.0005 is in its own bucket (le)
            h.record(seconds, ("/v1/x", "POST", "201"))
        metrics.events_appended.add(("c", "t"), 3)
        text = metrics.render().decode()
    finally:
        metrics.shutdown()
    labels = 'method="POST",route="/v1/x",status="201"'
    for le, n in (("0.0005", 1), ("0.001", 1), ("0.0025", 3), ("5", 3), ("10", 4),
                  ("+Inf", 5)):  # fmt: skip
        assert f'icn_http_request_duration_seconds_bucket{{le="{le}",{labels}}} {n}.0' in text
    assert f"icn_http_request_duration_seconds_count{{{labels}}} 5.0" in text
    assert f"icn_http_request_duration_seconds_sum{{{labels}}} 18.0045" in text
    assert 'icn_events_appended_total{coop="c",type="t"} 3.0' in text
    assert "# TYPE icn_events_appended_total counter" in text


def test_a_busy_address_is_a_warning_and_a_free_one_serves(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two nodes on one host both on the default: the second serves its members without
    /metrics, and says which setting to change."""
    metrics = NodeMetrics()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        addr = f"127.0.0.1:{taken.getsockname()[1]}"
        with caplog.at_level(logging.WARNING, logger="icn.telemetry"):
            assert serve_apart(addr, metrics) is None
    assert f"cannot listen on {addr}" in caplog.text and "ICN_METRICS_ADDR" in caplog.text
    stop = serve_apart("127.0.0.1:0", metrics)  # port 0: any free one
    assert stop is not None
    stop()
    assert serve_apart(None, metrics) is None  # "api": a route of the API instead
    metrics.shutdown()
