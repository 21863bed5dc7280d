"""The crash harness: a journalled broker SIGKILLed at random instants never sends a
reservation twice, and after a restart and reconciliation its book equals the exchange.

Each trial starts a :class:`SimServer` (a random walk every 5 ms so that fills race cancels, a
venue delay so that cancels are in flight, DELAY faults that hold answers on the wire) and a
new journal, then runs lives of ``crash_child.run_life`` in child processes, one after the
other on the same journal: each is killed (by the parent at a random instant after it is
ready, or by itself just after a durable commit, while a request is on the wire, or after an
answer arrived) except the last. Then the market stops, this process opens the journal with a
broker of its own, reconciles, and checks:

- no reservation reached the exchange twice: for every order, the kt10003 bodies the server
  processed are a subsequence of the cancel reservations the journal recorded (and the same for
  kt10002 and the modify reservations), every cancel the server took is bound to its own
  request in the book, and the book holds no cancel it never requested;
- the book equals the exchange (F, C, M, L and the state of every order, nothing pending);
- ``F + C + M + L == Q`` for every order;
- the journal replays into the very book.

``CRASH_TRIALS=200 pytest -s tests/test_crash.py`` runs a long campaign (default 10 trials);
``CRASH_SEED`` changes the seed, ``CRASH_FIRST=N CRASH_TRIALS=1`` reruns trial N alone (its
parameters are the same; the instants of the kills and the fills are not). The figures are
printed at the end (``-s`` shows them).
"""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from crash_child import make_client, settle

from adapters.journal import Journal
from adapters.kiwoom.broker import KiwoomBroker
from adapters.kiwoom.simserver import Fault, FaultKind, SimServer
from engine import OrderBook
from engine import events as ev
from engine.book import AnomalyKind
from engine.sessions import KST

TRIALS = int(os.environ.get("CRASH_TRIALS", "10"))
SEED = int(os.environ.get("CRASH_SEED", "20260309"))
FIRST = int(os.environ.get("CRASH_FIRST", "0"))  # to rerun one trial: CRASH_FIRST=35 CRASH_TRIALS=1
CHILD = Path(__file__).resolve().parent / "crash_child.py"
ACCOUNT = "crash-account"
GRACE = 0.1
LIVES = 3
KILLS = ("timer", "before", "during", "after")


class Zygote:
    """The harness's side of ``crash_child.py --zygote``: start lives, read what they say."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(CHILD), "--zygote"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=CHILD.parent.parent,
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True, name="zygote-reader").start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(json.loads(line))

    def command(self, message: dict[str, Any]) -> None:
        """Write one line to the zygote: a life's config, then ``kill`` or ``wait``."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()

    def next(self, timeout: float = 60.0) -> dict[str, Any]:
        """Return the next message of the zygote or its child (fail after ``timeout``)."""
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no word from the crash child in {timeout} s")

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(30)


@pytest.fixture(scope="module")
def zygote() -> Iterator[Zygote]:
    """One zygote for the module: the imports are paid once, a life starts in milliseconds."""
    z = Zygote()
    try:
        yield z
    finally:
        z.close()


def is_subsequence(sent: Sequence[object], reserved: Sequence[object]) -> bool:
    """Return True when ``sent`` is ``reserved`` with some items left out (each used once)."""
    it = iter(reserved)
    return all(any(item == r for r in it) for item in sent)


def test_is_subsequence() -> None:
    assert is_subsequence([4, 0], [4, 3, 0])
    assert not is_subsequence([4, 4, 0], [4, 0])  # one reservation sent twice
    assert not is_subsequence([0, 4], [4, 0])


class Tally:
    """What the campaign did and found."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.duplicates: list[str] = []
        self.mismatches: list[str] = []

    def line(self) -> str:
        c = self.counts
        kills = ", ".join(f"{k} {c['kill_' + k]}" for k in KILLS)
        landed = ", ".join(f"{k} {n}" for k, n in sorted(c.items()) if "(" in k)
        return (
            f"crash harness: {c['trials']} trials, {c['lives']} lives, {c['kills']} kills "
            f"({kills}; self-kills landed: {landed}); {c['orders']} orders, "
            f"{c['kt10003']} kt10003 and {c['kt10002']} kt10002 processed, "
            f"{c['unknown']} unknown outcomes, {c['released']} released unsent; "
            f"duplicates {len(self.duplicates)}, mismatches {len(self.mismatches)}"
        )


def run_lives(
    zygote: Zygote, server: SimServer, journal: Path, rng: random.Random, tally: Tally
) -> None:
    """Run the trial's lives one after the other on ``journal``; all but the last are killed."""
    for life in range(LIVES):
        last = life == LIVES - 1
        how = "none" if last else rng.choice(KILLS)
        config = {
            "base_url": server.base_url,
            "journal": str(journal),
            "account": ACCOUNT,
            "seed": rng.randrange(1 << 30),
            "ops": rng.randint(5, 12),
            "grace": GRACE,
            "settle_tries": 8,
            "kill_at": rng.randint(1, 4) if how in ("before", "during", "after") else -1,
            "kill_api": rng.choices(("cancel", "modify", "place"), (6, 3, 1))[0],
            "kill_how": how,
        }
        zygote.command(config)
        if how != "timer":
            zygote.command({"wait": True})
        exit_code = None
        ready = False
        while exit_code is None:
            message = zygote.next()
            exit_code = message.get("exit")
            if "killed" in message:
                tally.counts[f"{message['killed']} ({message['api']})"] += 1
            if how == "timer" and (message.get("ready") or message.get("failed")):
                if message.get("ready"):
                    time.sleep(rng.uniform(0.0, 0.3))
                zygote.command({"kill": bool(message.get("ready"))})
            ready = ready or bool(message.get("ready"))
        tally.counts["lives"] += 1
        if exit_code == -signal.SIGKILL:
            tally.counts["kills"] += 1
            tally.counts["kill_" + how] += 1
        else:
            assert exit_code == 0 and ready, f"life {life} ({how}) failed: exit {exit_code}"


def check_trial(
    server: SimServer, broker: KiwoomBroker, events: list[ev.Event], tally: Tally, trial: int
) -> None:
    """Compare the book, the journal and what the server processed; record what is wrong."""
    duplicates: list[str] = []
    mismatches: list[str] = []
    book = broker.book
    reserved: dict[str, list[int]] = {}
    modifies: dict[str, list[tuple[int, int]]] = {}
    for e in events:
        if isinstance(e, ev.CancelRequested):
            reserved.setdefault(e.orig_ord_no, []).append(e.qty)
        elif isinstance(e, ev.ModifyRequested):
            modifies.setdefault(e.orig_ord_no, []).append((e.qty, e.price))
        elif isinstance(e, ev.CancelOutcomeUnknown):
            tally.counts["unknown"] += 1
        elif isinstance(e, ev.CancelRejected | ev.ModifyRejected) and e.code == "NOT_RECEIVED":
            tally.counts["released"] += 1
    sent: dict[str, list[int]] = {}
    sent_modifies: dict[str, list[tuple[int, int]]] = {}
    taken: Counter[str] = Counter()
    taken_modifies: Counter[str] = Counter()
    with server.lock:
        log = list(server.log)
        truth = {no: server.truth(no) for no in server.exchange.orders}
    for call in log:
        if not call.processed:
            continue
        if call.api_id == "kt10003":
            no = str(call.body["orig_ord_no"])
            sent.setdefault(no, []).append(int(call.body["cncl_qty"]))
            taken[no] += call.outcome == "ok"
            tally.counts["kt10003"] += 1
        elif call.api_id == "kt10002":
            no = str(call.body["orig_ord_no"])
            sent_modifies.setdefault(no, []).append(
                (int(call.body["mdfy_qty"]), int(call.body["mdfy_uv"]))
            )
            taken_modifies[no] += call.outcome == "ok"
            tally.counts["kt10002"] += 1
    for no, qtys in sent.items():
        if not is_subsequence(qtys, reserved.get(no, [])):
            duplicates.append(f"{no}: kt10003 {qtys}, reserved {reserved.get(no)}")
    for no, moves in sent_modifies.items():
        if not is_subsequence(moves, modifies.get(no, [])):
            duplicates.append(f"{no}: kt10002 {moves}, reserved {modifies.get(no)}")
    for anomaly in book.anomalies:
        if anomaly.kind == AnomalyKind.UNREQUESTED_CANCEL:
            duplicates.append(f"{anomaly.ord_no}: a cancel no request of ours explains")
    tally.counts["orders"] += len(truth)
    if not set(truth) <= set(book.orders):
        mismatches.append(f"orders missing from the book: {set(truth) - set(book.orders)}")
    for no, order in book.orders.items():
        q = (order.filled_qty, order.cancelled_qty, order.replaced_qty, order.leaves_qty)
        if sum(q) != order.qty:
            mismatches.append(f"{no}: F+C+M+L = {sum(q)} != Q = {order.qty}")
        bound = [c.cancel_no for c in order.cancels if c.cancel_no]
        if len(bound) != taken[no] or len(set(bound)) != len(bound):
            mismatches.append(f"{no}: {taken[no]} cancels taken, bound {bound}")
        numbered = [m.cancel_no for m in order.modifies if m.cancel_no]
        if len(numbered) != taken_modifies[no]:
            mismatches.append(f"{no}: {taken_modifies[no]} modifies taken, {numbered}")
        if (
            order.pending_cancel_qty
            or order.cancel_all_pending
            or order.pending_modify_qty
            or order.modify_all_pending
        ):
            mismatches.append(f"{no}: still pending after reconciliation: {order!r}")
        t = truth.get(no)
        if t is None:
            mismatches.append(f"{no}: in the book, not on the exchange")
        elif (*q, order.state) != (t.filled, t.cancelled, t.replaced, t.leaves, t.state):
            mismatches.append(f"{no}: book {order!r}, exchange {t!r}")
    tally.duplicates += [f"trial {trial}, {d}" for d in duplicates]
    tally.mismatches += [f"trial {trial}, {m}" for m in mismatches]


def run_trial(zygote: Zygote, trial: int, tmp: Path, tally: Tally) -> None:
    """One trial: a fresh server and journal, killed lives, then the checks."""
    rng = random.Random(SEED * 1_000 + trial)
    journal = tmp / f"trial-{trial}.sqlite3"
    with SimServer(
        seed=rng.randrange(1 << 20),
        rate=None,
        market=True,
        step_ms=5,
        venue_ms=rng.choice((20, 50, 120)),
    ) as server:
        for api_id in ("kt10003", "kt10002", "kt10000"):  # answers held on the wire
            delay = rng.choice((0.15, 0.3, 0.5))  # 0.5: past the client's 0.4 s read timeout
            server.inject(Fault(FaultKind.DELAY, api_id=api_id, delay=delay, times=2))
        server.inject(Fault(FaultKind.CLOSE_AFTER, api_id="kt10003", times=1))
        run_lives(zygote, server, journal, rng, tally)
        with server.lock:
            server.market = False  # no more bars, so no more fills
            # what is on its way to the venue arrives now (an order may still fill against
            # the last bar's volume): then the exchange holds still for the checks
            server.exchange.drain()
        server.wait_idle()
        with make_client(server.base_url) as client:
            broker = KiwoomBroker(
                client, journal=journal, account=ACCOUNT, unknown_grace=timedelta(seconds=GRACE)
            )
            try:
                if not settle(broker, tries=20, pause=GRACE):
                    tally.mismatches.append(f"trial {trial}: reconciliation never came clean")
                assert broker.journal is not None
                broker.journal.commit()
                events = list(broker.journal.events(broker.trading_day))
                check_trial(server, broker, events, tally, trial)
                live = broker.book.snapshot()
            finally:
                broker.close()
    if OrderBook.replay(events).snapshot() != live:
        tally.mismatches.append(f"trial {trial}: the journal does not replay into the book")
    with Journal(journal, account=ACCOUNT) as reopened:
        if reopened.open_day(datetime.now(KST).date()).snapshot() != live:
            tally.mismatches.append(f"trial {trial}: the reopened journal differs from the book")
    tally.counts["trials"] += 1


def test_killed_at_random_instants_no_share_is_sent_twice_and_the_book_equals_the_exchange(
    zygote: Zygote, tmp_path: Path
) -> None:
    tally = Tally()
    for trial in range(FIRST, FIRST + TRIALS):
        run_trial(zygote, trial, tmp_path, tally)
    print("\n" + tally.line())
    for problem in tally.duplicates + tally.mismatches:
        print("  " + problem)
    assert tally.duplicates == [], (tally.line(), tally.duplicates)
    assert tally.mismatches == [], (tally.line(), tally.mismatches)
    assert tally.counts["kills"] >= TRIALS // 2  # most trials killed a life (a self-kill may
    # be due at a request a life never made)
    assert tally.counts["kt10003"] > TRIALS  # and did send cancels
