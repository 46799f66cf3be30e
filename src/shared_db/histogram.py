"""A labelled Prometheus histogram whose observation is one bisect and two list updates.

``prometheus_client.Histogram`` checks the metric's type, walks the bounds in Python and takes
two locks (the bucket's and the sum's) on every observation: about 1.4 µs here, against 0.4 µs
for this one. Statement durations and checkout waits are observed on the event loop's thread,
one observation at a time, so here each series is a plain list of per-bucket counts, and the
cumulative buckets are only summed when the registry is scraped. The exposition is the same:
``<name>_bucket`` by ``le``, ``<name>_count`` and ``<name>_sum``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

Observe = Callable[[float], None]


class LeanHistogram(Collector):
    """A histogram named ``name`` with these label names and finite, increasing ``buckets``."""

    def __init__(self, name: str, documentation: str, labels: Sequence[str],
                 buckets: Sequence[float], registry: CollectorRegistry) -> None:
        self.name, self.documentation, self.labels = name, documentation, list(labels)
        self._bounds = tuple(buckets)
        go = floatToGoString
        self._les = [go(b) for b in self._bounds] + ["+Inf"]  # type: ignore[no-untyped-call]
        # Per series: one count per bucket (the last is +Inf), then the sum.
        self._series: dict[tuple[str, ...], list[float]] = {}
        registry.register(self)

    def child(self, *labels: str) -> Observe:
        """The observer of one series, made once and kept by the caller."""
        counts = self._series.get(labels)
        if counts is None:
            counts = self._series[labels] = [0.0] * (len(self._bounds) + 2)

        def observe(value: float, counts: list[float] = counts,
                    bounds: tuple[float, ...] = self._bounds) -> None:
            counts[bisect_left(bounds, value)] += 1  # le: the first bound >= value
            counts[-1] += value
        return observe

    def _family(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(self.name, self.documentation, labels=self.labels)

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        for labels, counts in list(self._series.items()):
            total, buckets = 0.0, []
            for le, count in zip(self._les, counts, strict=False):
                total += count
                buckets.append((le, total))
            family.add_metric(list(labels), buckets, counts[-1])
        yield family
