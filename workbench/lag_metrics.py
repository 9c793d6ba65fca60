"""`lag --serve HOST:PORT`: the latest evaluated window in Prometheus' text format, at /metrics.

Through the maintained client library (prometheus-client): a custom Collector reads the views of
the last refresh when Prometheus scrapes, so a scrape never waits for a broker and always sees one
consistent refresh. Series, per group and per (group, topic, partition):

    workbench_lag_events / workbench_group_lag_events                lag in events
    workbench_lag_seconds / workbench_group_lag_seconds              lag in time (an estimate;
                                                                     absent until it can be made)
    workbench_lag_verdict / workbench_group_verdict                  the verdict: its code as the
        value (-1 UNKNOWN, 0 OK, 1 WARN, 2 REWIND, 3 STALL, 4 STOP, 5 NOCONSUMER), its name as
        the ``verdict`` label; alert on ``workbench_group_verdict >= 3``
    workbench_lag_drain_seconds / workbench_group_drain_seconds      time to drain at the current
                                                                     rates (+Inf: never drains)

and workbench_lag_refresh_timestamp_seconds, workbench_lag_refresh_duration_seconds,
workbench_lag_refresh_failures_total, workbench_lag_groups.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from workbench.lag_watch import GroupView

PARTITION = ["group", "topic", "partition"]


def _drain_value(seconds: float | None, known: bool) -> float | None:
    """Seconds to drain as a sample: +Inf where rates are known and it never drains."""
    if seconds is not None:
        return seconds
    return math.inf if known else None


class LagCollector(Collector):
    """Reads the latest evaluated window (set by :meth:`update`, from the refresh loop)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._views: Sequence[GroupView] = ()
        self._at: float | None = None
        self._duration: float | None = None
        self._failures = 0

    def update(self, views: Sequence[GroupView], duration_s: float) -> None:
        with self._lock:
            self._views, self._at, self._duration = list(views), time.time(), duration_s

    def failed(self) -> None:
        with self._lock:
            self._failures += 1

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            views, at, duration, failures = self._views, self._at, self._duration, self._failures
        events = GaugeMetricFamily("workbench_lag_events", "Lag in events per partition", labels=PARTITION)
        seconds = GaugeMetricFamily(
            "workbench_lag_seconds", "Estimated lag in time per partition", labels=PARTITION, unit="seconds"
        )
        verdict = GaugeMetricFamily(
            "workbench_lag_verdict", "Verdict per partition (value: its code)", labels=[*PARTITION, "verdict"]
        )
        drain = GaugeMetricFamily(
            "workbench_lag_drain_seconds", "Time to drain per partition at the current rates", labels=PARTITION
        )
        g_events = GaugeMetricFamily("workbench_group_lag_events", "Total lag in events per group", labels=["group"])
        g_seconds = GaugeMetricFamily(
            "workbench_group_lag_seconds", "Largest estimated lag in time per group", labels=["group"]
        )
        g_verdict = GaugeMetricFamily(
            "workbench_group_verdict", "Verdict per group (value: its code)", labels=["group", "verdict"]
        )
        g_drain = GaugeMetricFamily(
            "workbench_group_drain_seconds", "Time to drain per group at the current rates", labels=["group"]
        )
        for v in views:
            gid = v.group.group_id
            a = v.assessment
            g_events.add_metric([gid], v.group.total)
            if a is not None and a.time_lag_ms is not None:
                g_seconds.add_metric([gid], a.time_lag_ms / 1000)
            g_verdict.add_metric([gid, v.verdict.name], int(v.verdict))
            g_value = _drain_value(v.drain_s, v.in_rate is not None and v.out_rate is not None)
            if g_value is not None:
                g_drain.add_metric([gid], g_value)
            drains = v.partition_drain or {}
            for p in v.group.partitions:
                labels = [gid, p.topic, str(p.partition)]
                pa = v.partitions.get((p.topic, p.partition))
                if p.lag is not None:
                    events.add_metric(labels, p.lag)
                if pa is not None:
                    if pa.time_lag_ms is not None:
                        seconds.add_metric(labels, pa.time_lag_ms / 1000)
                    verdict.add_metric([*labels, pa.label], int(pa.verdict))
                elif len(v.group.partitions) == 1:  # one read: the group's own verdict (NOCONSUMER)
                    verdict.add_metric([*labels, v.verdict.name], int(v.verdict))
                d = drains.get((p.topic, p.partition))
                if d is not None:
                    drain.add_metric(labels, d)
        yield from (events, seconds, verdict, drain, g_events, g_seconds, g_verdict, g_drain)
        yield GaugeMetricFamily("workbench_lag_groups", "Consumer groups in the last refresh", value=len(views))
        if at is not None:
            yield GaugeMetricFamily(
                "workbench_lag_refresh_timestamp_seconds", "When the last refresh ended (Unix time)", value=at
            )
            yield GaugeMetricFamily(
                "workbench_lag_refresh_duration_seconds", "How long the last refresh took", value=duration or 0.0
            )
        yield CounterMetricFamily(
            "workbench_lag_refresh_failures", "Refreshes that failed (broker slow or away)", value=failures
        )


class LagExporter:
    """The HTTP server (prometheus-client's, on its own thread) and the collector it serves."""

    def __init__(self, host: str, port: int) -> None:
        self.collector = LagCollector()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)
        server: Any
        server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        self._server = server
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{server.server_port}/metrics"

    def update(self, views: Sequence[GroupView], duration_s: float) -> None:
        self.collector.update(views, duration_s)

    def failed(self) -> None:
        self.collector.failed()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
