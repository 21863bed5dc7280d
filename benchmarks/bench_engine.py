"""Engine throughput, memory and scaling on a realistic mixed stream.

Per order: 접수, 확인, two fills, a partial cancel request, its acceptance and confirmation, and
a late fill (one in ten takes shares back from the cancelled ones). Orders interleave in blocks
of 1,000 live orders. Prints events/s for the engine and for a naive baseline that binds a
``transitions`` Machine to every order, their ratio, bytes per live order (tracemalloc) and the
time for 100k vs 1M orders.

    python benchmarks/bench_engine.py [--orders 100000] [--big 1000000] [--baseline-orders N]

The baseline runs the same stream over --baseline-orders orders (default: as many as --orders).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from transitions import Machine

from engine import OrderBook, Side
from engine import events as ev
from engine.lifecycle import EDGES, STATES

BLOCK = 1_000
SYMBOLS = ("005930", "000660", "035420", "051910", "005380")
Request = tuple[str, int]  # (ord_no, qty): a cancel the strategy asks the engine for


def stream(n_orders: int) -> Iterator[ev.Event | Request]:
    """Yield the mixed stream lazily (so memory measurements see only what the book keeps)."""
    for base in range(0, n_orders, BLOCK):
        nums = [f"{i:07d}" for i in range(base + 1, min(base + BLOCK, n_orders) + 1)]
        cancel_nos = [f"C{n}" for n in nums]
        for i, no in enumerate(nums):
            yield ev.OrderAccepted(no, SYMBOLS[i % 5], Side.BUY if i % 2 else Side.SELL, 10, 70_000)
        for no in nums:
            yield ev.OrderConfirmed(no)
        for no in nums:
            yield ev.OrderFilled(no, "1", 3, 70_000)
        for no in nums:
            yield (no, 3)
        for no in nums:
            yield ev.OrderFilled(no, "2", 2, 70_100)
        for no, cno in zip(nums, cancel_nos, strict=True):
            yield ev.CancelAccepted(cno, no, 3)
        for no, cno in zip(nums, cancel_nos, strict=True):
            yield ev.CancelConfirmed(cno, no, 3)
        for i, no in enumerate(nums):
            # late fill: 1 of the 2 still open, or (one in ten) 3 shares, one back from C
            yield ev.OrderFilled(no, "3", 3 if i % 10 == 0 else 1, 69_900)


def run_engine(items: Any, *, journal: bool = True) -> tuple[OrderBook, int, float]:
    book = OrderBook(journal=journal)
    apply = book.apply
    request = book.request_cancel
    count = 0
    t0 = time.perf_counter()
    for item in items:
        if type(item) is tuple:
            request(item[0], item[1])
        else:
            apply(item)
        count += 1
    return book, count, time.perf_counter() - t0


class NaiveOrder:
    """The naive design: the same quantities, a transitions Machine bound to each order."""

    def __init__(self, e: ev.OrderAccepted) -> None:
        self.qty, self.f, self.c, self.leaves, self.p = e.qty, 0, 0, e.qty, 0
        self.fills: dict[str, int] = {}
        self.machine = Machine(
            model=self,
            states=[s.name for s in STATES],
            transitions=[
                {"trigger": t, "source": a.name, "dest": b.name} for t, a, b in EDGES if a != b
            ],
            initial="RECEIVED",
            auto_transitions=False,
        )


def run_naive(items: Any) -> tuple[int, float]:
    """Apply the same stream with one Machine per order (the design the issue rules out)."""
    orders: dict[str, NaiveOrder] = {}
    count = 0
    t0 = time.perf_counter()
    for item in items:
        count += 1
        if type(item) is tuple:
            o = orders[item[0]]
            if o.leaves - o.p >= item[1]:
                o.p += item[1]
            continue
        t = type(item)
        if t is ev.OrderAccepted:
            orders[item.ord_no] = NaiveOrder(item)
        elif t is ev.OrderConfirmed:
            orders[item.ord_no].confirm()
        elif t is ev.OrderFilled:
            o = orders[item.ord_no]
            if item.fill_id in o.fills:
                continue
            o.fills[item.fill_id] = item.qty
            late = max(item.qty - o.leaves, 0)
            o.leaves -= item.qty - late
            o.c -= late
            o.f += item.qty
            dst = "FILLED" if o.f == o.qty else ("PARTIALLY_FILLED" if o.leaves else "CANCELLED")
            if dst != o.state:
                o.fill() if dst == "PARTIALLY_FILLED" else o.machine.set_state(dst)
        elif t is ev.CancelConfirmed:
            o = orders[item.orig_ord_no]
            moved = min(item.qty, o.leaves)
            o.leaves -= moved
            o.c += moved
            o.p -= item.qty
    return count, time.perf_counter() - t0


def bytes_per_live_order(n: int, *, journal: bool) -> tuple[float, int, int]:
    """Return (bytes per live order, live orders, journalled events) for a book built from n."""
    gc.collect()
    tracemalloc.start()
    book, _, _ = run_engine(stream(n), journal=journal)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    live = sum(1 for o in book.orders.values() if not o.is_terminal)
    return used / len(book.orders), live, len(book.events)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--big", type=int, default=1_000_000, help="0 to skip the scaling run")
    parser.add_argument("--baseline-orders", type=int, default=0, help="default: --orders")
    args = parser.parse_args()

    items = list(stream(args.orders))
    book, count, secs = run_engine(items)
    live = sum(1 for o in book.orders.values() if not o.is_terminal)
    eng_rate = count / secs
    print(
        f"engine:   {count:,} events over {args.orders:,} orders in {secs:.3f} s "
        f"= {eng_rate:,.0f} events/s  ({live:,} orders still live, "
        f"{len(book.anomalies):,} late-fill anomalies)"
    )
    del book

    baseline_orders = args.baseline_orders or args.orders
    base_items = list(stream(baseline_orders))
    bcount, bsecs = run_naive(base_items)
    base_rate = bcount / bsecs
    print(
        f"baseline: {bcount:,} events over {baseline_orders:,} orders in {bsecs:.3f} s "
        f"= {base_rate:,.0f} events/s  (a transitions Machine per order)"
    )
    print(f"ratio:    {eng_rate / base_rate:.1f}x  (target >= 15x)")
    del base_items
    gc.collect()

    state, live, _ = bytes_per_live_order(args.orders, journal=False)
    total, _, journalled = bytes_per_live_order(args.orders, journal=True)
    print(
        f"memory:   {state:,.0f} bytes per order held, book state ({live:,} of them live; "
        f"target <= 1024); {total:,.0f} with the event journal on "
        f"({(total - state) * live / journalled:,.0f} bytes per journalled event)"
    )

    if args.big:
        del items
        gc.collect()
        big_items = list(stream(args.big))
        _, bcount, bsecs = run_engine(big_items)
        print(
            f"scaling:  {args.orders:,} orders {secs:.2f} s, {args.big:,} orders {bsecs:.2f} s "
            f"({bcount / bsecs:,.0f} events/s); time ratio {bsecs / secs:.1f} for "
            f"{args.big / args.orders:.0f}x the orders (linear = {args.big / args.orders:.0f})"
        )


if __name__ == "__main__":
    main()
