"""Kiwoom adapter throughput, overhead and pacing, against ``order-engine sim-server`` on loopback.

    python benchmarks/bench_kiwoom.py [--cancels 300] [--rounds 5] [--burst 50] [--rate 5]

The simulator runs in its own process (``order-engine sim-server``), as a real server would, so
the client's figures do not share an interpreter with it. Three measurements, in one run:

1. **Adapter vs Kiwoom's example code.** The same partial cancels (1 share each of resting
   orders) sent (a) through :class:`adapters.kiwoom.KiwoomBroker` (engine decision, reservation,
   kt10003 on one ``requests.Session``, the answer into the book) and (b) as Kiwoom's example does:
   a fresh ``requests.post`` per call (a new connection each time). Target: at least 2x.
2. **Adapter overhead over a bare ``requests.Session.post``** with the same headers and body on
   the same kind of kept-alive connection. Target: under 15%. ``Session.post`` merges the
   environment (proxies, ``.netrc``) on every call, which the adapter's transport does not, so
   the adapter's machinery is also given against its own ``Transport.post`` of the same request:
   that difference is the engine decision, reservation, pacing, token, answer and book.
3. **Pacing utilisation** for a burst of ``--burst`` cancels against a server limiting kt10003 to
   ``--rate`` calls/s: achieved rate (calls after the first / time from the first to the last)
   over the limit. Target: at least 95%, with zero 429 answers.

Rounds alternate (a), (b) and the bare loop so that drifts of the machine hit all of them; the
figures are medians over rounds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import requests

from adapters.kiwoom import KiwoomBroker, KiwoomClient
from engine import OrderBook, Side

APPKEY = "bench-appkey"
SECRET = "bench-secretkey"
PRICE = 50_000  # a buy far below 005930's price: it rests


@contextmanager
def sim_server(*args: str) -> Iterator[str]:
    """Start ``order-engine sim-server`` in its own process; yield its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapters.cli.main", "sim-server", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"sim-server did not print its URL: {url!r}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def place_orders(broker: KiwoomBroker, n: int, qty: int) -> list[str]:
    numbers = []
    for _ in range(n):
        ticket = broker.place(stk_cd="005930", side=Side.BUY, qty=qty, price=PRICE)
        if not ticket.ord_no:
            raise RuntimeError(f"place failed: {ticket}")
        numbers.append(ticket.ord_no)
    return numbers


def timed(first: int, last: int, call: Callable[[int], None]) -> float:
    """Return the seconds ``call(i)`` takes for i from ``first`` to ``last - 1``."""
    start = time.perf_counter()
    for i in range(first, last):
        call(i)
    return time.perf_counter() - start


def throughput(url: str, cancels: int, rounds: int) -> None:
    client = KiwoomClient(
        url, appkey=APPKEY, secretkey=SECRET, allow_loopback=True, rates={"*": None}
    )
    broker = KiwoomBroker(client, OrderBook(journal=False))
    per_round = cancels
    # each round cancels 1 share of each order four times (adapter, seed, bare, transport)
    numbers = place_orders(broker, per_round, qty=4 * rounds + 1)
    token = client.tokens.token().reveal()  # the header is built by hand here
    headers = {
        "Content-Type": "application/json;charset=UTF-8",
        "authorization": f"Bearer {token}",
        "cont-yn": "N",
        "next-key": "",
        "api-id": "kt10003",
    }
    endpoint = url + "/api/dostk/ordr"

    def body(i: int) -> dict[str, str]:
        return {
            "dmst_stex_tp": "KRX",
            "orig_ord_no": numbers[i],
            "stk_cd": "005930",
            "cncl_qty": "1",
        }

    def adapter(i: int) -> None:
        outcome = broker.cancel(broker.book, numbers[i], 1)
        if outcome.ticket is None or not outcome.ticket.ord_no:
            raise RuntimeError(f"adapter cancel failed: {outcome}")

    def seed(i: int) -> None:  # Kiwoom's example code: requests.post per call
        response = requests.post(endpoint, headers=headers, json=body(i))
        if response.json().get("return_code") != 0:
            raise RuntimeError(response.text)

    bare_session = requests.Session()

    def bare(i: int) -> None:
        response = bare_session.post(endpoint, headers=headers, json=body(i), timeout=(3.05, 10))
        if response.json().get("return_code") != 0:
            raise RuntimeError(response.text)

    # The adapter's own HTTP alone (its Transport: a prepared request on its session, the answer
    # translated), so that the difference to the adapter is its machinery: engine decision,
    # reservation, pacing, token, answer parsing and the book.
    def transport(i: int) -> None:
        client.transport.post("/api/dostk/ordr", "kt10003", body(i), token=token)

    # warm up every path once (connections, token)
    paths = (("adapter", adapter), ("seed", seed), ("bare", bare), ("transport", transport))
    for _, fn in paths:
        fn(0)
    times: dict[str, list[float]] = {name: [] for name, _ in paths}
    for _ in range(rounds):
        for name, fn in paths:
            times[name].append(timed(1, per_round, fn))
    client.close()
    bare_session.close()
    n = per_round - 1
    med = {k: statistics.median(v) for k, v in times.items()}
    rate = {k: n / t for k, t in med.items()}
    print(f"cancels per round: {n}, rounds: {rounds} (medians)")
    print(
        f"  adapter (KiwoomBroker.cancel): {rate['adapter']:8.0f} cancels/s  "
        f"{med['adapter'] / n * 1e3:6.3f} ms each"
    )
    print(
        f"  seed pattern (requests.post):  {rate['seed']:8.0f} cancels/s  "
        f"{med['seed'] / n * 1e3:6.3f} ms each"
    )
    print(
        f"  bare requests.Session.post:    {rate['bare']:8.0f} cancels/s  "
        f"{med['bare'] / n * 1e3:6.3f} ms each"
    )
    print(
        f"  the adapter's Transport alone:  {rate['transport']:8.0f} cancels/s  "
        f"{med['transport'] / n * 1e3:6.3f} ms each"
    )
    ratio = rate["adapter"] / rate["seed"]
    overhead = med["adapter"] / med["bare"] - 1
    own = med["adapter"] / med["transport"] - 1
    print(
        f"  adapter / seed pattern: {ratio:.2f}x (target >= 2x) {'OK' if ratio >= 2 else 'MISSED'}"
    )
    print(
        f"  adapter overhead over a bare Session.post: {overhead * 100:+.1f}% "
        f"(target < 15%) {'OK' if overhead < 0.15 else 'MISSED'}"
    )
    print(
        f"  the adapter's machinery over its own Transport: {own * 100:+.1f}% "
        f"({(med['adapter'] - med['transport']) / n * 1e6:.0f} us per cancel: engine decision, "
        "reservation, pacing, token, answer, book)"
    )


def pacing(url: str, burst: int, limit: int) -> None:
    client = KiwoomClient(
        url,
        appkey=APPKEY,
        secretkey=SECRET,
        allow_loopback=True,
        rates={"*": limit},
    )
    broker = KiwoomBroker(client, OrderBook(journal=False))
    numbers = place_orders(broker, burst, qty=2)  # kt10000 is paced (and limited) too
    throttled_before = client.throttled
    stamps = []
    for no in numbers:
        outcome = broker.cancel(broker.book, no, "0")
        stamps.append(time.monotonic())
        if outcome.ticket is None or not outcome.ticket.ord_no:
            raise RuntimeError(f"cancel failed: {outcome}")
    throttled = client.throttled - throttled_before
    client.close()
    achieved = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    use = achieved / limit
    print(
        f"pacing: {burst} cancels under a {limit}/s kt10003 limit in {stamps[-1] - stamps[0]:.2f} s"
    )
    print(
        f"  achieved {achieved:.3f} calls/s = {use * 100:.1f}% of the limit (target >= 95%) "
        f"{'OK' if use >= 0.95 else 'MISSED'}; 429 answers: {throttled} "
        f"{'OK' if throttled == 0 else 'MISSED'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cancels", type=int, default=300, help="cancels per path per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--rate", type=int, default=5, help="the server's kt10003 limit, calls/s")
    args = parser.parse_args()
    with sim_server("--rate", "none", "--no-market") as url:
        throughput(url, args.cancels, args.rounds)
    with sim_server("--rate", str(args.rate), "--no-market") as url:
        pacing(url, args.burst, args.rate)


if __name__ == "__main__":
    main()
