"""Engine throughput, memory and scaling on a realistic mixed stream.

Per order: 접수, 확인, two fills, a partial cancel request, its acceptance and confirmation, and
a late fill (one in ten takes shares back from the cancelled ones). Orders interleave in blocks
of 1,000 live orders. Prints events/s for the engine and for a naive baseline that binds a
``transitions`` Machine to every order, their ratio, bytes per live order (tracemalloc) and the
time for 100k vs 1M orders.

    python benchmarks/bench_engine.py [--orders 100000] [--big 1000000] [--baseline-orders N]
        [--peer-orders 20000] [--rounds 5]

The baseline runs the same stream over --baseline-orders orders (default: as many as --orders).

Then the head-to-head with NautilusTrader (``benchmarks/_nautilus_peer.py`` describes the stream:
seven operations per order, events built inside the timed loop, the engine's journal on): the
rounds alternate between the two (which goes first alternates too; each one's objects are
checked and dropped before the next runs, and the garbage collector is on for both, with
Python's default settings, as in a live process), and it prints the median and range of each
one's operations per second, their ratio, and the memory per order of each, measured in a
fresh process each: Python allocations (tracemalloc) and the growth of the
resident set (which also sees memory allocated outside Python, as NautilusTrader's Rust core
does). NautilusTrader is optional: ``pip install 'kiwoom-order-engine[bench]'``; without it
this part says how to install it and the rest runs.
Targets (issue 12): at least 1.5x NautilusTrader's rate (aim 2x), at most half its memory.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from transitions import Machine

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _nautilus_peer as peer

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


def run_engine(
    items: Any,
    *,
    journal: bool = True,
    book: OrderBook | None = None,
    clock: Callable[[], float] = time.process_time,
) -> tuple[OrderBook, int, float]:
    """Feed ``items`` (events, and (ord_no, qty) cancel requests) to ``book`` (a new one with
    ``journal``); return it, the count and the seconds on ``clock`` (CPU time by default)."""
    book = book if book is not None else OrderBook(journal=journal)
    apply = book.apply
    request = book.request_cancel
    count = 0
    t0 = clock()
    for item in items:
        if type(item) is tuple:
            request(item[0], item[1])
        else:
            apply(item)
        count += 1
    return book, count, clock() - t0


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
    t0 = time.process_time()
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
    return count, time.process_time() - t0


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


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peer_memory(name: str, n: int) -> None:
    """Print (in this fresh process) bytes per order of ``name`` after the stream: traced, RSS."""
    run = peer.PEERS[name]
    run(50)  # imports and first-use caches outside the measurement
    gc.collect()
    rss = _rss()
    tracemalloc.start()
    _, kept = run(n)
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    grown = _rss() - rss
    print(json.dumps({"traced": traced / n, "rss": grown / n}))
    del kept


def _memory_of(name: str, n: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--memory-of", name, "--peer-orders", str(n)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout)
    return result


def head_to_head(n: int, rounds: int) -> None:
    """Alternate the engine and NautilusTrader over the same stream; print rates and memory."""
    ops = n * peer.OPS_PER_ORDER
    if not peer.nautilus_available():
        print(
            "vs NautilusTrader: skipped, nautilus_trader is not installed "
            "(pip install 'kiwoom-order-engine[bench]', or pip install nautilus_trader)"
        )
        return
    import nautilus_trader

    names = ("engine", "nautilus")
    rates: dict[str, list[float]] = {name: [] for name in names}
    for round_no in range(rounds):
        order = names if round_no % 2 == 0 else names[::-1]
        for name in order:
            gc.collect()
            secs, kept = peer.PEERS[name](n)
            rates[name].append(ops / secs)
            # Checked and dropped at once: each peer runs on the same heap, not on the other's
            # objects (which its garbage collections would otherwise walk through).
            peer.CHECKS[name](kept)
            del kept
    engine, theirs = rates["engine"], rates["nautilus"]
    print(
        f"vs NautilusTrader {nautilus_trader.__version__} (LimitOrder.apply), {n:,} orders x "
        f"{peer.OPS_PER_ORDER} operations, events built in the loop, journal on, {rounds} rounds:"
    )
    for name, label in (("engine", "engine  "), ("nautilus", "nautilus")):
        r = rates[name]
        print(
            f"  {label}: median {statistics.median(r):,.0f} ops/s "
            f"(range {min(r):,.0f} - {max(r):,.0f})"
        )
    per_round = [a / b for a, b in zip(engine, theirs, strict=True)]
    print(
        f"  ratio:    {statistics.median(engine) / statistics.median(theirs):.2f}x "
        f"(per round {min(per_round):.2f}x - {max(per_round):.2f}x; target >= 1.5x, aim 2x)"
    )
    mine, other = _memory_of("engine", n), _memory_of("nautilus", n)
    print(
        f"  memory per order: engine {mine['traced']:,.0f} B traced, {mine['rss']:,.0f} B RSS; "
        f"nautilus {other['traced']:,.0f} B traced, {other['rss']:,.0f} B RSS "
        f"(engine/nautilus {mine['traced'] / other['traced']:.2f} traced, "
        f"{mine['rss'] / other['rss']:.2f} RSS; target <= 0.5)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--big", type=int, default=1_000_000, help="0 to skip the scaling run")
    parser.add_argument("--baseline-orders", type=int, default=0, help="default: --orders")
    parser.add_argument("--peer-orders", type=int, default=20_000, help="orders vs Nautilus")
    parser.add_argument("--rounds", type=int, default=5, help="rounds vs Nautilus (>= 3)")
    parser.add_argument("--only-peer", action="store_true", help="only the NautilusTrader part")
    parser.add_argument("--memory-of", choices=sorted(peer.PEERS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_of:
        peer_memory(args.memory_of, args.peer_orders)
        return
    if args.only_peer:
        head_to_head(args.peer_orders, args.rounds)
        return

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

    head_to_head(args.peer_orders, args.rounds)

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
