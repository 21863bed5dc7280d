"""End-to-end simulated events per second (exchange + harness + engine), and the engine's share.

    python benchmarks/bench_sim.py [--orders 100000] [--seed 7] [--latency-ms 5-150] [--repeat 3]

A seeded simulated trading day with the built-in example strategy (the same run as
``order-engine simulate``), with the event journal off. "Events" are the events the engine
took: every delivered exchange fact and the engine's own cancel reservations.

The engine's share is measured without instrumenting the timed run: a second, identical run
(the simulation is deterministic) records every call the harness made into the engine
(``apply``, ``decide_cancel``, ``request_cancel``), and those calls are then replayed, timed,
into a fresh book. Engine share = replay time / end-to-end time.

The timed runs use the garbage-collector setting of ``order-engine simulate``
(:func:`adapters.cli.simulate.batch_gc`); one run with Python's default setting is shown too.

Targets on a 2-core machine: at least 100,000 end-to-end events/s, the engine at most half.
"""

from __future__ import annotations

import argparse
import gc
import resource
import time
from contextlib import nullcontext, suppress
from typing import Any

from adapters.cli.simulate import batch_gc
from adapters.sim import Delay, Latency, run_session
from engine import CancelRefused, OrderBook
from engine import events as ev


class RecordingBook(OrderBook):
    """An OrderBook that notes every call the harness makes (for the replay, not the timing)."""

    def __init__(self, calls: list[tuple[str, Any, Any, Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls = calls

    def apply(self, event: ev.Event) -> Any:
        self.calls.append(("apply", event, None, None))
        return super().apply(event)

    def decide_cancel(self, ord_no: str, qty: int | str = 0, **kw: Any) -> Any:
        self.calls.append(("decide", ord_no, qty, None))
        return super().decide_cancel(ord_no, qty, **kw)

    def request_cancel(self, ord_no: str, qty: int | str = 0, **kw: Any) -> Any:
        self.calls.append(("request", ord_no, qty, kw.get("ts")))
        return super().request_cancel(ord_no, qty, **kw)


def _run(orders: int, seed: int, latency: Latency, *, tuned: bool) -> tuple[float, int, int]:
    gc.collect()
    started = time.perf_counter()
    with batch_gc() if tuned else nullcontext():
        _, report = run_session(seed=seed, orders=orders, latency=latency, journal=False)
    elapsed = time.perf_counter() - started
    if not report.ok:
        raise SystemExit(f"the simulation did not match the exchange: {report.mismatches[:5]}")
    return elapsed, report.events, report.orders


def _record(orders: int, seed: int, latency: Latency) -> list[tuple[str, Any, Any, Any]]:
    from adapters.sim import session

    calls: list[tuple[str, Any, Any, Any]] = []
    real = session.OrderBook
    session.OrderBook = lambda **kw: RecordingBook(calls, **kw)  # type: ignore[misc,assignment]
    try:
        run_session(seed=seed, orders=orders, latency=latency, journal=False)
    finally:
        session.OrderBook = real  # type: ignore[misc]
    return calls


def _replay(calls: list[tuple[str, Any, Any, Any]]) -> float:
    book = OrderBook(journal=False)
    apply, decide, request = book.apply, book.decide_cancel, book.request_cancel
    gc.collect()
    started = time.perf_counter()
    for kind, a, b, ts in calls:
        if kind == "apply":
            apply(a)
        elif kind == "decide":
            decide(a, b)
        else:
            with suppress(CancelRefused):  # refused in the timed run too: deciding is the work
                request(a, b, ts=ts)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--latency-ms", default="5-150")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the best is kept")
    args = parser.parse_args()
    latency = Latency.uniform(Delay.parse(args.latency_ms))

    print(
        f"simulated day: {args.orders:,} orders, seed {args.seed}, latency {args.latency_ms} ms "
        "per channel"
    )
    best = float("inf")
    events = orders = 0
    elapsed, events, orders = _run(args.orders, args.seed, latency, tuned=False)
    print(f"  Python's default GC: {elapsed:.2f} s, {events / elapsed:,.0f} events/s")
    for attempt in range(1, args.repeat + 1):
        elapsed, events, orders = _run(args.orders, args.seed, latency, tuned=True)
        best = min(best, elapsed)
        rate = events / elapsed
        print(f"  run {attempt} (GC as in simulate): {elapsed:.2f} s, {rate:,.0f} events/s")
    rate = events / best
    print(f"end to end: {events:,} events over {orders:,} orders in {best:.2f} s")
    print(f"  {rate:,.0f} events/s (target 100,000: {rate / 100_000:.2f}x)")

    calls = _record(args.orders, args.seed, latency)
    with batch_gc():
        engine = min(_replay(calls) for _ in range(args.repeat))
    share = engine / best
    print(
        f"engine alone (the same {len(calls):,} calls replayed into a fresh book): {engine:.2f} s"
    )
    print(f"  engine share of the end-to-end time: {share:.1%} (target at most 50%)")
    print(f"  exchange + harness + strategy: {best - engine:.2f} s ({1 - share:.1%})")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this process: {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
