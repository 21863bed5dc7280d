"""The real-time feed, from sim-server's exchange to the book: throughput, latency, reconnects.

    python benchmarks/bench_feed.py [--orders 2000] [--samples 300] [--reconnects 20]

By default the simulator runs in its own process (a ``SimServer`` driven over a pipe: the fills
are made with ``SimServer.trade``, which has no HTTP form), so the client's figures do not share
an interpreter with it; ``--one-process`` runs both in this one, sharing the interpreter's lock.
Everything is on loopback. The book is an ``engine.OrderBook`` under a ``threading.Lock``, fed by
:class:`adapters.kiwoom.feed.KiwoomFeed` exactly as a broker's ``apply_events`` would be.

1. **Frames per second** sim-server -> book: ``--orders`` resting one-share buys, then one trade
   that fills them all at once; from the trade to the last fill applied in the book. Each fill is
   one type-00 frame with all 35 fields (built, JSON-encoded, sent, parsed, deduplicated, mapped
   and applied).
2. **Latency** from an execution at sim-server (the ``trade`` call) to its fill applied in the
   book, one execution at a time: p50, p99 and max over ``--samples``.
3. **Reconnect time** (measured first, on a day of few orders): the server drops the connection;
   from the drop to the feed connected again, logged in, registered and past its REST reconcile
   (ka10075 + kt00007), with the smallest backoff (0.05 s, half of it jittered). The reconcile
   grows with the day: one of the whole benchmark day is printed last for comparison.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

from adapters.kiwoom import KiwoomClient
from adapters.kiwoom.broker import KiwoomBroker
from adapters.kiwoom.feed import KiwoomFeed
from adapters.kiwoom.simserver import SimServer
from adapters.kiwoom.ws_server import WsFault, WsFaultKind
from engine import EngineError, OrderBook, Side
from engine import events as ev

PRICE = 70_000


class Sink:
    """The book under a lock; records when fills of watched orders were applied."""

    def __init__(self) -> None:
        self.book = OrderBook()
        self.lock = threading.Lock()
        self.fills = 0
        self.refused = 0
        self.applied_at: dict[str, float] = {}
        self.done = threading.Condition()

    def apply_events(self, events: list[ev.Event]) -> None:
        now = time.perf_counter()
        with self.lock:
            for event in events:
                try:
                    self.book.apply(event)
                except EngineError:
                    self.refused += 1
                    continue
                if isinstance(event, ev.OrderFilled):
                    self.fills += 1
                    self.applied_at[event.ord_no] = now
        with self.done:
            self.done.notify_all()

    def wait(self, condition: Any, timeout: float = 60.0) -> None:
        with self.done:
            if not self.done.wait_for(condition, timeout):
                raise RuntimeError("the feed did not deliver in time")


class Local:
    """The simulator in this process."""

    def __enter__(self) -> Local:
        self.server = SimServer(market=False, rate=None, ws_ping_interval=5.0).start()
        self.base_url, self.ws_url = self.server.base_url, self.server.ws_url
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.stop()

    def trade(self, stk_cd: str, price: int, volume: int) -> None:
        self.server.trade(stk_cd, price, volume)

    def drop(self) -> None:
        self.server.inject_ws(WsFault(WsFaultKind.DROP))


_CHILD = """
import sys
from adapters.kiwoom.simserver import SimServer
from adapters.kiwoom.ws_server import WsFault, WsFaultKind
with SimServer(market=False, rate=None, ws_ping_interval=5.0) as server:
    print(server.base_url)
    print(server.ws_url, flush=True)
    for line in sys.stdin:
        command, *rest = line.split()
        if command == "trade":
            server.trade(rest[0], int(rest[1]), int(rest[2]))
        elif command == "drop":
            server.inject_ws(WsFault(WsFaultKind.DROP))
        print("ok", flush=True)
"""


class Remote:
    """The simulator in its own process, told what to do over a pipe (one line, one answer)."""

    def __enter__(self) -> Remote:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        assert self.proc.stdout is not None
        self.base_url = self.proc.stdout.readline().strip()
        self.ws_url = self.proc.stdout.readline().strip()
        if not self.ws_url.startswith("ws://"):
            raise RuntimeError("the simulator did not start")
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def _say(self, line: str) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        if self.proc.stdout.readline().strip() != "ok":
            raise RuntimeError(f"the simulator did not do {line!r}")

    def trade(self, stk_cd: str, price: int, volume: int) -> None:
        self._say(f"trade {stk_cd} {price} {volume}")

    def drop(self) -> None:
        self._say("drop")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--reconnects", type=int, default=20)
    parser.add_argument("--one-process", action="store_true", help="the simulator in this process")
    args = parser.parse_args()
    print("simulator:", "in this process" if args.one_process else "in its own process")

    with Local() if args.one_process else Remote() as server:
        client = KiwoomClient(
            server.base_url,
            appkey="bench",
            secretkey="bench",
            allow_loopback=True,
            rates={"*": None},
        )
        sink = Sink()
        broker = KiwoomBroker(client, sink.book)

        def reconcile() -> None:
            with sink.lock:
                broker.reconcile()

        feed = KiwoomFeed.for_broker(
            client,
            on_events=sink.apply_events,
            on_connected=reconcile,
            url=server.ws_url,
            allow_loopback=True,
            backoff=(0.05, 1.0),
            rng=random.Random(1),
        )
        with client, feed:
            if not feed.wait_connected(10):
                raise RuntimeError("the feed did not connect")

            # 1. reconnects, on a day of few orders (its reconcile is short)
            totals = []
            for _ in range(args.reconnects):
                started = time.perf_counter()
                server.drop()
                deadline = time.monotonic() + 5
                while feed.connected and time.monotonic() < deadline:
                    time.sleep(0.001)
                if not feed.wait_connected(10):
                    raise RuntimeError("the feed did not reconnect")
                totals.append((time.perf_counter() - started) * 1000)
            print(
                f"reconnect (drop -> logged in, registered, reconciled; backoff 0.025-0.05 s) "
                f"over {len(totals)}: p50 {statistics.median(totals):.1f} ms, "
                f"max {max(totals):.1f} ms; the feed's own measure of the last: "
                f"{(feed.stats.reconnect_seconds or 0) * 1000:.1f} ms"
            )
            # 2. throughput
            numbers = []
            for _ in range(args.orders):
                answer = client.place(stk_cd="005930", side=Side.BUY, qty=1, price=PRICE)
                numbers.append(answer.ord_no)
            sink.wait(lambda: all(n in sink.book for n in numbers))
            fills_before = sink.fills
            started = time.perf_counter()
            server.trade("005930", PRICE, args.orders)
            sink.wait(lambda: sink.fills - fills_before >= args.orders)
            elapsed = time.perf_counter() - started
            frames = sink.fills - fills_before
            print(
                f"throughput: {frames} fill frames in {elapsed:.3f} s = "
                f"{frames / elapsed:,.0f} frames/s sim-server -> book "
                f"({args.orders} orders, all filled: "
                f"{all(sink.book.get(n).filled_qty == 1 for n in numbers)})"
            )

            # 3. latency, one execution at a time
            latencies = []
            for _ in range(args.samples):
                no = client.place(stk_cd="005930", side=Side.BUY, qty=1, price=PRICE).ord_no
                sink.wait(lambda no=no: no in sink.book)
                before = sink.fills
                started = time.perf_counter()
                server.trade("005930", PRICE, 1)
                sink.wait(lambda before=before: sink.fills > before)
                latencies.append((sink.applied_at[no] - started) * 1000)
            print(
                f"latency execution -> book over {len(latencies)} executions: "
                f"p50 {statistics.median(latencies):.2f} ms, "
                f"p99 {percentile(latencies, 0.99):.2f} ms, max {max(latencies):.2f} ms"
            )

            started = time.perf_counter()
            reconcile()
            print(
                f"for comparison, one REST reconcile of the whole day ({len(sink.book)} orders, "
                f"100 rows a page): {(time.perf_counter() - started) * 1000:.0f} ms"
            )
            print(
                f"book: {len(sink.book)} orders, {sink.refused} events refused, "
                f"duplicates dropped {feed.stats.duplicates}, bad frames {feed.stats.bad_frames}"
            )


if __name__ == "__main__":
    main()
