"""Prometheus metrics: requests, latencies, commands by type, view lag."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class _ViewLag(Collector):
    def __init__(self, lags: Callable[[], Iterable[tuple[str, int, int]]]) -> None:
        self.lags = lags

    def collect(self):  # type: ignore[no-untyped-def]
        lag = GaugeMetricFamily("ticketflow_view_lag_events", "Events a view is behind the log", labels=["view"])
        position = GaugeMetricFamily("ticketflow_view_position", "Last log position a view has processed", labels=["view"])
        try:
            for name, view_position, log_position in self.lags():
                lag.add_metric([name], max(0, log_position - view_position))
                position.add_metric([name], view_position)
        except Exception:  # noqa: BLE001 - a scrape must not fail because the store is down
            pass
        yield lag
        yield position


class Metrics:
    def __init__(self, lags: Callable[[], Iterable[tuple[str, int, int]]]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ticketflow_http_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "ticketflow_http_request_seconds", "HTTP request latency", ["method", "route"], registry=self.registry,
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.commands = Counter(
            "ticketflow_commands", "Commands handled", ["command", "outcome"], registry=self.registry
        )
        self.registry.register(_ViewLag(lags))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def command(self, name: str, outcome: str) -> None:
        self.commands.labels(name, outcome).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
