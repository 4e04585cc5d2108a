"""Prometheus metrics, one CollectorRegistry per app (tests build several apps in one process).

Queue depths are read from the database at scrape time, so they are right after a restart and
across several worker processes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from service.logging import log_event
from store import Decision, QueueCounts

QueueCountsSource = Callable[[], Mapping[str, QueueCounts]]

logger = logging.getLogger("triage.metrics")

disable_created_metrics()  # type: ignore[no-untyped-call]  # the *_created series only double the scrape size here

NO_DEPARTMENT = "none"  # the department label of a suggestion without one (a model with no department head)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class QueueDepthCollector(Collector):
    def __init__(self, counts: QueueCountsSource) -> None:
        self._counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "triage_queue_depth", "Petitions per queue and state / 各队列信访件数", labels=["queue", "state"]
        )
        try:
            counts = self._counts()
        except Exception as error:  # a scrape must not fail because the database is briefly busy
            log_event(logger, logging.WARNING, "metrics.queue_depth_failed", error_type=type(error).__name__)
            counts = {}
        for queue, states in counts.items():
            for state, value in asdict(states).items():
                family.add_metric([queue, state], value)
        yield family


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "triage_http_requests_total",
            "HTTP requests / 请求数",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "triage_http_request_duration_seconds",
            "Request latency / 请求耗时",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "triage_predictions_total",
            "Predictions per head and label / 各标签预测数",
            ["head", "label"],
            registry=self.registry,
        )
        self.needs_review = Counter(
            "triage_predictions_needs_review_total",
            "Predictions sent to manual triage / 需人工分流的预测数",
            registry=self.registry,
        )
        self.submissions = Counter(
            "triage_petitions_submitted_total", "Submissions by outcome / 提交结果", ["outcome"], registry=self.registry
        )
        self.predict_batch = Histogram(
            "triage_predict_batch_size",
            "Texts per model call / 每次模型调用的文本数",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=self.registry,
        )
        # Acceptance of the suggestions, by suggested department (GET /v1/stats has the same per week,
        # read from the database; these count in this process since it started).
        self.suggestions = Counter(
            "triage_suggestions_total",
            "Stored petitions by suggested department and whether they need review / 各部门建议件数（是否需人工分流）",
            ["department", "needs_review"],
            registry=self.registry,
        )
        self.decisions = Counter(
            "triage_route_decisions_total",
            "Decisions on suggestions (accepted, corrected, rerouted) by suggested department / 对建议的决定",
            ["decision", "department", "auto_routed"],
            registry=self.registry,
        )
        self.model_info = Gauge(
            "triage_model_info", "Loaded model version / 当前模型版本", ["version"], registry=self.registry
        )

    def watch_queues(self, counts: QueueCountsSource) -> None:
        self.registry.register(QueueDepthCollector(counts))

    def set_model(self, version: str) -> None:
        self.model_info.clear()
        self.model_info.labels(version=version).set(1)

    def observe_predictions(self, heads: Any, needs_review: bool) -> None:
        for name, head in heads.items():
            self.predictions.labels(head=name, label=head.label).inc()
        if needs_review:
            self.needs_review.inc()

    def observe_suggestion(self, department: str | None, needs_review: bool) -> None:
        """A petition was stored with this suggestion."""
        self.suggestions.labels(department=department or NO_DEPARTMENT, needs_review=str(needs_review).lower()).inc()

    def observe_decision(self, decision: Decision, department: str | None, auto_routed: bool) -> None:
        """A clerk's decision on a suggestion of `department` was recorded as feedback."""
        self.decisions.labels(
            decision=decision, department=department or NO_DEPARTMENT, auto_routed=str(auto_routed).lower()
        ).inc()

    def observe_request(self, method: str, route: str, status: int, started: float) -> float:
        elapsed = time.perf_counter() - started
        self.requests.labels(method=method, route=route, status=str(status)).inc()
        self.latency.labels(method=method, route=route).observe(elapsed)
        return elapsed
