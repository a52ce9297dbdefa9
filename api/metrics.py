"""Prometheus metrics.

Two kinds, kept apart on purpose:

* **Counts of this process's work** (requests, latencies, commands): counters and histograms. With
  several API processes (``serve --workers N``), ``serve`` gives them a private directory
  (``PROMETHEUS_MULTIPROC_DIR``, prometheus_client's own variable) and every scrape, on whichever
  worker it lands, answers the sum over all of them (the client's multiprocess mode).
* **Facts of the database** (view lag, SLA warnings and breaches per team, the webhook outbox, the
  sealer's backlog): computed from the store and views when scraped (:class:`DeskCollector`), so
  every worker answers the same numbers.

``process_*`` describes each API process (labelled ``pid`` with several workers). The ``_created``
series are off: they double the output and no dashboard reads them.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import prometheus_client
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from projections import operations
from projections.readside import ReadSide
from projections.view import ViewStore

log = logging.getLogger("ticketflow.api")
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

#: prometheus_client's own variable: where each process keeps its counters' files (set by ``serve``).
MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
_LIVE_FILE = re.compile(r"gauge_livesum_(\d+)\.db$")


def multiprocess_dir() -> Path | None:
    """The directory ``serve`` made for this run's worker processes (None: one process, plain counters)."""
    value = os.environ.get(MULTIPROC_VARIABLE)
    return Path(value) if value else None


class DeskCollector(Collector):
    """Gauges read from the store and views at scrape time (the same on every API process).

    A part whose store does not answer is left out of that scrape (the rest still answers)."""

    def __init__(
        self,
        read_side: ReadSide,
        now: Callable[[], datetime],
        seal_store: ViewStore | None = None,
        open_seal_store: Callable[[], ViewStore] | None = None,
    ) -> None:
        """The sealer's store: ``seal_store`` (shared, the embedded sealer's) or one ``open_seal_store``
        opens at the first scrape (and :meth:`close` closes); neither when sealing is off."""
        self.read_side, self.now, self.seal_store, self._open_seal_store = (
            read_side,
            now,
            seal_store,
            open_seal_store,
        )
        self._owned = False

    def close(self) -> None:
        if self._owned and self.seal_store is not None:
            self.seal_store.datastore.close()  # type: ignore[attr-defined]

    def collect(self) -> Iterator[Metric]:
        for part in (self._views, self._sla, self._webhooks, self._sealer):
            try:
                yield from list(part())
            except Exception as exc:  # noqa: BLE001 - a scrape must not fail because one store is down
                log.warning(
                    "metrics: %s left out of this scrape",
                    part.__name__.strip("_"),
                    extra={"error": type(exc).__name__},
                )

    def _views(self) -> Iterable[Metric]:
        lag = GaugeMetricFamily(
            "ticketflow_view_lag_events",
            "Events a view is behind the log (log position minus the view's position)",
            labels=["view"],
        )
        position = GaugeMetricFamily(
            "ticketflow_view_position", "Last log position a view has processed", labels=["view"]
        )
        log = GaugeMetricFamily("ticketflow_log_position", "Position of the newest event in the log")
        statuses = self.read_side.status()
        for status in statuses:
            lag.add_metric([status.name], status.lag)
            position.add_metric([status.name], status.position)
        log.add_metric([], statuses[0].log_position if statuses else self.read_side.desk.log_position())
        return [lag, position, log]

    def _sla(self) -> Iterable[Metric]:
        names = self.read_side.read("directory", operations.team_names)
        breaches = self.read_side.read("workflow", operations.sla_breaches_by_team)
        per_ticket = self.read_side.read("audit", operations.sla_warnings_by_ticket)
        teams = self.read_side.read("workflow", lambda db: operations.ticket_teams(db, sorted(per_ticket)))
        warnings: dict[str, int] = {}
        for ticket, count in per_ticket.items():
            team = teams.get(ticket, "")
            warnings[team] = warnings.get(team, 0) + count
        labels = ["team_id", "team"]
        warned = GaugeMetricFamily(
            "ticketflow_sla_warnings", "SLA warnings recorded, per ticket's current team", labels=labels
        )
        breached = GaugeMetricFamily(
            "ticketflow_sla_breaches",
            "SLA targets breached (ticket, metric, cycle), per team the ticket was in",
            labels=labels,
        )
        for family, counts in ((warned, warnings), (breached, breaches)):
            for team_id in sorted(set(names) | set(counts)):
                family.add_metric([team_id, names.get(team_id, "")], counts.get(team_id, 0))
        return [warned, breached]

    def _webhooks(self) -> Iterable[Metric]:
        facts = self.read_side.read("outbox", operations.webhook_facts)
        now = self.now()
        deliveries = GaugeMetricFamily(
            "ticketflow_webhook_deliveries",
            "Webhook deliveries by state (pending, delivered, failed: given up until retried)",
            labels=["webhook", "state"],
        )
        failures = GaugeMetricFamily(
            "ticketflow_webhook_failed_attempts",
            "Delivery attempts that got no 2xx answer",
            labels=["webhook"],
        )
        age = GaugeMetricFamily(
            "ticketflow_webhook_queue_age_seconds",
            "Age of the oldest pending delivery's event (0: none pending)",
            labels=["webhook"],
        )
        for hook in facts:
            for state, count in sorted(hook.deliveries.items()):
                deliveries.add_metric([hook.name, state], count)
            failures.add_metric([hook.name], hook.failed_attempts)
            pending_for = (now - hook.oldest_pending).total_seconds() if hook.oldest_pending else 0.0
            age.add_metric([hook.name], max(0.0, pending_for))
        return [deliveries, failures, age]

    def _sealer(self) -> Iterable[Metric]:
        if self.seal_store is None:
            if self._open_seal_store is None:
                return []
            self.seal_store, self._owned = self._open_seal_store(), True
        desk = self.read_side.desk
        sealed = self.seal_store.max_tracking_id(desk.name) or 0
        facts = self.seal_store.read(lambda db: operations.seal_facts(db, sealed))
        unsealed = GaugeMetricFamily(
            "ticketflow_unsealed_events", "Events in the log not yet sealed into the hash chain"
        )
        unsealed.add_metric([], max(0, desk.log_position() - facts.sealed_position))
        families: list[Metric] = [unsealed]
        if facts.checkpoint_at is not None:
            age = GaugeMetricFamily(
                "ticketflow_seal_checkpoint_age_seconds", "Seconds since the newest signed checkpoint"
            )
            age.add_metric([], max(0.0, (self.now() - facts.checkpoint_at).total_seconds()))
            families.append(age)
        return families


def _fixed(pid: int) -> Callable[[], int]:
    return lambda: pid


class WorkerProcesses(Collector):
    """``process_*`` for every live API process of this run, labelled with its pid; marks the files
    of processes that are gone as dead (their counters stay in the totals, their live gauges go)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for pid in self._live_pids():
            for family in ProcessCollector(registry=None, pid=_fixed(pid)).collect():
                into = merged.setdefault(family.name, Metric(family.name, family.documentation, family.type))
                for sample in family.samples:
                    into.add_sample(sample.name, {**sample.labels, "pid": str(pid)}, sample.value)
        yield from merged.values()

    def _live_pids(self) -> list[int]:
        pids = []
        for path in self.directory.glob("gauge_livesum_*.db"):
            if (found := _LIVE_FILE.search(path.name)) is None:
                continue
            pid = int(found.group(1))
            if Path(f"/proc/{pid}").exists() or pid == os.getpid():
                pids.append(pid)
            else:
                multiprocess.mark_process_dead(pid, str(self.directory))  # type: ignore[no-untyped-call]
        return sorted(pids)


class Metrics:
    """This process's instruments, and the scrape that adds the desk's facts to them."""

    def __init__(self, desk_facts: DeskCollector, directory: Path | None = None) -> None:
        self.directory = directory
        if directory is not None:
            # Chosen when prometheus_client was imported, perhaps before ``serve`` set the variable.
            values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ticketflow_http_requests",
            "HTTP requests, by route template (`unmatched`: no route)",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ticketflow_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.commands = Counter(
            "ticketflow_commands", "Commands handled", ["command", "outcome"], registry=self.registry
        )
        self.workers = Gauge(
            "ticketflow_api_processes",
            "API processes serving",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.workers.set(1)
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._command_children: dict[tuple[str, str], Any] = {}
        self.desk_facts = desk_facts
        if directory is None:
            ProcessCollector(registry=self.registry)
            self.registry.register(desk_facts)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        # The labelled children, looked up once per (method, route, status): prometheus_client's labels()
        # checks and locks on every call. Bounded: methods x route templates x statuses.
        children = self._request_children.get((method, route, status))
        if children is None:
            children = (self.requests.labels(method, route, str(status)), self.latency.labels(method, route))
            self._request_children[(method, route, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    def command(self, name: str, outcome: str) -> None:
        # As observe_request: the child looked up once per (command, outcome), bounded by the command types.
        child = self._command_children.get((name, outcome))
        if child is None:
            child = self._command_children[(name, outcome)] = self.commands.labels(name, outcome)
        child.inc()

    def render(self) -> bytes:
        if self.directory is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        # First: it marks the processes that are gone as dead before their live gauges are read.
        registry.register(WorkerProcesses(self.directory))
        multiprocess.MultiProcessCollector(registry, path=str(self.directory))  # type: ignore[no-untyped-call]
        registry.register(self.desk_facts)
        return generate_latest(registry)

    def close(self) -> None:
        """This process stops serving: its live gauges leave the totals (its counters stay)."""
        if self.directory is not None:
            multiprocess.mark_process_dead(os.getpid(), str(self.directory))  # type: ignore[no-untyped-call]
