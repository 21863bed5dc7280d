"""What the durable journal (adapters.journal) costs, on this machine's disk.

1. **Intent cost**: one cancel reservation (``request_cancel``) committed with
   ``synchronous=FULL`` (``commit(durable=True)``), as a broker does before every kt10003:
   mean, median and 99th percentile latency, beside the same commit in NORMAL mode.
2. **Facts per second**: the mixed stream of benchmarks/bench_engine.py (접수, 확인, fills, a
   partial cancel request, its acceptance and confirmation, a late fill) applied to a journalled
   book and committed in batches of N events.
3. **Engine events/s with the journal attached vs without**: the same stream through a book
   keeping its events in memory (the default), through a book keeping none, and through a
   journalled book committing every 1,000 events; the ratios.

    python benchmarks/bench_journal.py [--intents 500] [--orders 10000] [--dir PATH]

``--dir`` puts the journal files on the disk you want to measure (default: a temporary
directory). Every figure comes from a new file. All times are wall-clock (a durable commit
waits for the disk, which CPU time does not count), the runs without a journal included.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from datetime import date
from itertools import islice
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import run_engine, stream

from adapters.journal import Journal
from engine import OrderBook, Side
from engine import events as ev

DAY = date(2026, 3, 9)
ACCOUNT = "bench"


def intent_latencies(path: Path, n: int, *, durable: bool) -> list[float]:
    """Return the seconds each of ``n`` cancel reservations took to reach the file."""
    with Journal(path, account=ACCOUNT) as journal:
        book = journal.open_day(DAY)
        for i in range(1, n + 1):
            book.apply(ev.OrderAccepted(f"{i:07d}", "005930", Side.BUY, 10, 70_000))
        journal.commit()
        took = []
        for i in range(1, n + 1):
            t0 = time.perf_counter()
            book.request_cancel(f"{i:07d}", 1)
            journal.commit(durable=durable)
            took.append(time.perf_counter() - t0)
    return took


def journalled_run(path: Path, items: Iterable[Any], batch: int) -> tuple[OrderBook, int, float]:
    """Apply ``items`` to a journalled book, committing every ``batch`` events (and at the end).

    Wall-clock seconds: a durable commit waits for the disk, which CPU time would not count.
    """
    with Journal(path, account=ACCOUNT) as journal:
        book = journal.open_day(DAY)
        commit = journal.commit
        items = iter(items)
        count = 0
        secs = 0.0
        while True:
            _, n, took = run_engine(islice(items, batch), book=book, clock=time.perf_counter)
            t0 = time.perf_counter()
            commit()
            secs += took + time.perf_counter() - t0
            count += n
            if n < batch:
                return book, count, secs


def describe(took: list[float]) -> str:
    ordered = sorted(took)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"mean {statistics.fmean(took) * 1e3:.3f} ms, median {statistics.median(took) * 1e3:.3f} "
        f"ms, p99 {p99 * 1e3:.3f} ms ({1 / statistics.fmean(took):,.0f} intents/s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--intents", type=int, default=500)
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--dir", type=Path, default=None, help="where the journal files go")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        where = Path(tmp)
        full = intent_latencies(where / "intents-full.sqlite3", args.intents, durable=True)
        normal = intent_latencies(where / "intents-normal.sqlite3", args.intents, durable=False)
        print(f"intent (FULL):   {describe(full)}")
        print(f"intent (NORMAL): {describe(normal)}")
        print(
            f"ratio:           FULL costs {statistics.fmean(full) / statistics.fmean(normal):.1f}x"
        )

        items = list(stream(args.orders))
        for batch in (1, 100, 10_000):
            head = items[:10_000] if batch == 1 else items  # one commit per event: a sample
            _, count, secs = journalled_run(where / f"facts-{batch}.sqlite3", head, batch)
            print(
                f"facts, batches of {batch:>6,}: {count:,} events in {secs:.3f} s "
                f"= {count / secs:,.0f} events/s"
            )

        # The same clock as the journalled run (wall time), so that the ratios compare alike.
        memory_book, count, mem_secs = run_engine(items, journal=True, clock=time.perf_counter)
        _, _, bare_secs = run_engine(items, journal=False, clock=time.perf_counter)
        journal_book, _, jour_secs = journalled_run(where / "engine.sqlite3", items, 1_000)
        assert journal_book.snapshot() == memory_book.snapshot()
        with Journal(where / "engine.sqlite3", account=ACCOUNT) as check:
            assert check.open_day(DAY).snapshot() == memory_book.snapshot()
        size = (where / "engine.sqlite3").stat().st_size
        print(
            f"engine, events kept in memory: {count / mem_secs:,.0f} events/s "
            f"({count:,} events, {args.orders:,} orders)"
        )
        print(f"engine, no journal:            {count / bare_secs:,.0f} events/s")
        print(
            f"engine, SQLite journal (commit every 1,000): {count / jour_secs:,.0f} events/s; "
            f"the file: {size / count:,.0f} bytes per event"
        )
        print(
            f"ratio:  journal / in-memory = {mem_secs / jour_secs:.2f} "
            f"(the journal costs {jour_secs / mem_secs:.1f}x the time), "
            f"journal / none = {bare_secs / jour_secs:.2f}"
        )


if __name__ == "__main__":
    main()
