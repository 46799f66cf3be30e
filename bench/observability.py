"""``python -m bench.observability [--quick] [--rounds N] [--json FILE]``: W1 and C1 with
tracing and metrics on, against the same client with them off, in one run on the same data.

A service traces a request from its web framework's span down: the sampling decision is taken
once, for the request, and the database spans follow it (the SDK's default ``ParentBased``
sampler). So every call here runs inside a request's trace context, as if an incoming
``traceparent`` had been read, for every client alike, and the clients differ in what is on:

- ``off``: the default client;
- ``metrics``: ``SHARED_DB_METRICS`` only;
- ``on``: ``SHARED_DB_TRACING`` and ``SHARED_DB_METRICS``, every request sampled, tracing to a
  real ``TracerProvider`` whose batch processor hands each span to an exporter that drops it
  (span creation, attributes and export queueing are all paid);
- ``on_10`` and ``on_1``: the same with 10 % and 1 % of the requests sampled, the rates
  services run in production.

Clients take turns chunk by chunk, as in ``python -m bench``. Tracing is process-wide, so each
chunk sets the tracer of the client it runs. The report gives, per round, each client's mean
latency (W1: a sampled minority does not move the median) or ops/s (C1) over ``off``'s, and
their medians; the goal is within 10 %. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry import context, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from bench import runner
from bench.__main__ import BENCH_DB, POOL, _server_url, prepare
from bench.ours import SharedDb
from shared_db import Database, load_settings, tracing
from shared_db.ops.scratch import drop_database
from shared_db.url import parse_database_url


class _Dropped(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def requests(sampled: float, count: int = 1000) -> list[context.Context]:
    """The trace contexts of ``count`` incoming requests, ``sampled`` of them sampled: what a
    service's framework makes current before its handler calls the database."""
    pick = random.Random(17)
    found = []
    for n in range(count):
        flags = TraceFlags.SAMPLED if n < sampled * count else TraceFlags.DEFAULT
        parent = SpanContext(pick.getrandbits(128), pick.getrandbits(64), is_remote=True,
                             trace_flags=TraceFlags(flags))
        found.append(trace.set_span_in_context(NonRecordingSpan(parent)))
    pick.shuffle(found)
    return found


class Observed(SharedDb):
    """shared-db with some of its telemetry on."""

    def __init__(self, name: str, env: dict[str, str], sampled: float | None = None) -> None:
        self.name, self._env = name, env
        self.provider: TracerProvider | None = None
        self.requests = requests(sampled or 0.0)
        if sampled is not None:
            self.provider = TracerProvider()  # ParentBased(ALWAYS_ON): the request decides
            self.provider.add_span_processor(BatchSpanProcessor(_Dropped()))

    async def open(self, url: str, pool: int) -> None:
        settings = load_settings({"DATABASE_URL": f"{url}?connection_limit={pool}",
                                  "SHARED_DB_ENV": "production", **self._env})
        self.db = await Database(settings).open()
        self.tracer = None if self.provider is None else self.provider.get_tracer("shared_db")

    def w1_op(self, ids: list[Any]) -> Any:
        async def op(i: int) -> Any:
            tracing.state.tracer = self.tracer
            token = context.attach(self.requests[i % len(self.requests)])
            try:
                return await self.w1(ids[i % len(ids)])
            finally:
                context.detach(token)
        return op


def clients() -> list[Observed]:
    on = {"SHARED_DB_TRACING": "true", "SHARED_DB_METRICS": "true"}
    return [Observed("off", {}), Observed("metrics", {"SHARED_DB_METRICS": "true"}),
            Observed("on", on, 1.0), Observed("on_10", on, 0.1), Observed("on_1", on, 0.01)]


async def run(plan: runner.Plan, url: str, ids: list[Any]) -> dict[str, list[dict[str, Any]]]:
    field = clients()
    for contender in field:
        await contender.open(url, POOL)
    ops = {c.name: c.w1_op(ids) for c in field}
    rounds: dict[str, list[dict[str, Any]]] = {}
    try:
        for key, total, workers in (("W1", plan.ops, 1), ("C1", plan.concurrent_ops,
                                                          plan.workers)):
            print(f"{key}: {plan.rounds} round(s)", file=sys.stderr, flush=True)
            for op in ops.values():
                for i in range(plan.warmup):
                    await op(i)
            for r in range(plan.rounds):
                box = runner.Interleaved(list(ops))
                for n, first in enumerate(range(0, total, plan.chunk)):
                    turn = (n + r) % len(field)
                    for c in field[turn:] + field[:turn]:
                        await box.chunk(c.name, ops[c.name], 10_000 * r + first,
                                        min(plan.chunk, total - first), workers)
                rounds.setdefault(key, []).append(box.results())
    finally:
        tracing.disable()
        for contender in field:
            await contender.close()
            if contender.provider is not None:
                contender.provider.shutdown()
    return rounds


def ratios(rounds: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per workload and client: its figure over ``off``'s per round (W1: mean latency, so above
    1 is slower; C1: ops/s, so below 1 is slower), the median, and the medians of rounds."""
    found: dict[str, Any] = {}
    for key, per_round in rounds.items():
        metric = "ops_s" if key == "C1" else "mean_us"
        found[key] = {"metric": metric}
        for name in per_round[0]:
            each = [r[name][metric] / r["off"][metric] for r in per_round]
            found[key][name] = {"over_off": round(statistics.median(each), 3),
                                "by_round": [round(x, 3) for x in each],
                                **runner.median_of_rounds([r[name] for r in per_round])}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.observability", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run, numbers not for reading")
    parser.add_argument("--rounds", type=int, help="rounds per workload (default 3; quick 1)")
    parser.add_argument("--json", type=Path, help="write the results to this file")
    args = parser.parse_args()
    plan = runner.QUICK if args.quick else runner.FULL
    if args.rounds:
        plan = runner.Plan(**{**plan.__dict__, "rounds": args.rounds})
    server = _server_url()
    url, _, inputs = prepare(server)
    try:
        found = ratios(asyncio.run(run(plan, url, inputs["ids"])))
    finally:
        drop_database(parse_database_url(server), BENCH_DB)
    for key, result in found.items():
        metric = result["metric"]
        print(f"{key} ({'mean µs' if metric == 'mean_us' else 'ops/s'}, over off):")
        for name, figures in result.items():
            if name != "metric":
                print(f"  {name:<11} {figures[metric]:>10.1f}  {figures['over_off']:.3f}  "
                      f"(rounds {', '.join(f'{x:.3f}' for x in figures['by_round'])})")
    if args.json:
        args.json.write_text(json.dumps(found, indent=2) + "\n")


if __name__ == "__main__":
    main()
