"""One KiwoomBroker, several threads: cancels of the same orders and real-time fills at once.

The broker is the one writer of its book and journal (``broker.lock``, never held during HTTP):
every kt10003 the server receives is a send the broker reported, no thread raises, no share is
lost, and the journal replays into the very book. ``sys.setswitchinterval(1e-6)`` makes the
interpreter switch threads as often as it can, so that races are likely.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_kiwoom_adapter import FAR_BELOW, assert_book_matches_truth, make_client

from adapters.broker import CancelStatus
from adapters.journal import Journal
from adapters.kiwoom.broker import KiwoomBroker
from adapters.kiwoom.simserver import SimServer
from engine import OrderBook, Refusal, Side
from engine import events as ev

ACCOUNT = "threads-account"
THREADS = 4
ORDERS = 30
_COUNTING = threading.Lock()
SENT = (CancelStatus.ACCEPTED, CancelStatus.REJECTED, CancelStatus.UNKNOWN)


@pytest.fixture
def server() -> Iterator[SimServer]:
    with SimServer(seed=3, rate=None, market=False, venue_ms=20) as srv:
        yield srv


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Switch threads every microsecond (restored afterwards)."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def run_threads(targets: list[Callable[[], None]]) -> list[BaseException]:
    """Start ``targets`` together (a barrier); return what any of them raised."""
    barrier = threading.Barrier(len(targets))
    errors: list[BaseException] = []

    def run(target: Callable[[], None]) -> None:
        try:
            barrier.wait()
            target()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
        assert not thread.is_alive(), "a thread hung"
    return errors


def place_orders(broker: KiwoomBroker, qty: int) -> list[str]:
    numbers = []
    for _ in range(ORDERS):
        ticket = broker.place(stk_cd="005930", side=Side.BUY, qty=qty, price=FAR_BELOW)
        numbers.append(ticket.ord_no)
    assert all(numbers)
    return numbers


def canceller(
    broker: KiwoomBroker, numbers: list[str], seed: int, outcomes: Counter[CancelStatus]
) -> Callable[[], None]:
    """Return a thread body cancelling every order twice, in its own order, some partly;
    its outcomes are added to ``outcomes`` when it is done (one update, under a lock)."""

    def body() -> None:
        rng = random.Random(seed)
        mine = numbers * 2
        rng.shuffle(mine)
        seen: Counter[CancelStatus] = Counter()
        for no in mine:
            qty: int | str = rng.choice(("0", 1, 2, 3))
            seen[broker.cancel(None, no, qty).status] += 1
        with _COUNTING:
            outcomes.update(seen)

    return body


def assert_quantities_add_up(book: OrderBook) -> None:
    for order in book.orders.values():
        parts = (order.filled_qty, order.cancelled_qty, order.replaced_qty, order.leaves_qty)
        assert sum(parts) == order.qty, order


def assert_journal_replays(broker: KiwoomBroker, path: Path) -> None:
    """Close the broker, reopen its journal: the day replays into the very same book."""
    with broker.lock:
        live = broker.book.snapshot()
    day = broker.trading_day
    broker.close()
    with Journal(path, account=ACCOUNT) as journal:
        assert journal.open_day(day).snapshot() == live
        assert OrderBook.replay(journal.events(day)).snapshot() == live


def test_four_threads_cancelling_the_same_orders_send_each_reservation_once(
    server: SimServer, tmp_path: Path, fast_switching: None
) -> None:
    path = tmp_path / "journal.sqlite3"
    with make_client(server) as client:
        broker = KiwoomBroker(client, journal=path, account=ACCOUNT, unknown_grace=timedelta(0))
        numbers = place_orders(broker, qty=10)
        outcomes: Counter[CancelStatus] = Counter()
        errors = run_threads(
            [canceller(broker, numbers, seed, outcomes) for seed in range(THREADS)]
        )
        assert errors == []
        sends = sum(outcomes[s] for s in SENT)
        assert server.calls["kt10003"] == sends  # every kt10003 the server got was reported
        assert outcomes[CancelStatus.ACCEPTED] >= ORDERS  # every order was cancelled, at least
        assert outcomes[CancelStatus.REFUSED] > 0  # and the engine refused the rest
        assert sum(outcomes.values()) == THREADS * ORDERS * 2
        time.sleep(0.1)  # the venue's 20 ms
        server.wait_idle()
        report = broker.reconcile()
        assert report.clean, report
        assert_book_matches_truth(broker.book, server)
        assert_quantities_add_up(broker.book)
        for no in numbers:
            order = broker.book.orders[no]
            taken = [c for c in order.cancels if c.cancel_no]
            assert len({c.cancel_no for c in taken}) == len(taken)  # one request, one cancel
        assert broker.book.anomalies == ()
        assert_journal_replays(broker, path)


def test_fills_applied_by_four_threads_while_four_others_cancel_are_all_counted(
    server: SimServer, tmp_path: Path, fast_switching: None
) -> None:
    path = tmp_path / "journal.sqlite3"
    fills_per_thread = 3
    with make_client(server) as client:
        broker = KiwoomBroker(client, journal=path, account=ACCOUNT, unknown_grace=timedelta(0))
        numbers = place_orders(broker, qty=20)
        outcomes: Counter[CancelStatus] = Counter()
        refused: list[tuple[ev.Event, str]] = []
        applied: list[ev.Event] = []
        ts = datetime.now(UTC)

        def filler(thread: int) -> Callable[[], None]:
            def body() -> None:
                order = list(numbers)
                random.Random(100 + thread).shuffle(order)
                for no in order:
                    batch = [
                        ev.OrderFilled(no, f"X{thread}-{no}-{k}", 1, FAR_BELOW, ts=ts)
                        for k in range(fills_per_thread)
                    ]
                    report = broker.apply_events(batch)
                    with _COUNTING:
                        refused.extend(report.refused)
                        applied.extend(report.applied)

            return body

        targets = [canceller(broker, numbers, seed, outcomes) for seed in range(THREADS)]
        targets += [filler(t) for t in range(THREADS)]
        errors = run_threads(targets)
        assert errors == []
        assert refused == []
        assert len(applied) == ORDERS * THREADS * fills_per_thread
        sends = sum(outcomes[s] for s in SENT)
        assert server.calls["kt10003"] == sends
        with broker.lock:
            book = broker.book
            for no in numbers:  # no share lost: every fill of every thread is counted once
                assert book.orders[no].filled_qty == THREADS * fills_per_thread
                assert len(book.orders[no].fill_ids) == THREADS * fills_per_thread
            assert_quantities_add_up(book)
            # the cancels and the fills raced: a cancel can never be refused for an unknown
            # order or a broken reservation, only for what the engine's rules say
            assert book.anomalies == ()
        assert outcomes[CancelStatus.ACCEPTED] >= ORDERS
        assert_journal_replays(broker, path)


def test_a_cancel_refused_for_an_unknown_outcome_sends_nothing_from_any_thread(
    server: SimServer, tmp_path: Path, fast_switching: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "journal.sqlite3"
    with make_client(server) as client:
        broker = KiwoomBroker(client, journal=path, account=ACCOUNT, unknown_grace=timedelta(0))
        [no] = place_orders_n(broker, 1)
        real = client.cancel

        def lost(**kwargs: object) -> object:
            real(**kwargs)  # the server takes it, the answer is lost
            raise ConnectionResetError("the answer was lost")

        monkeypatch.setattr(client, "cancel", lost)
        with pytest.raises(ConnectionResetError):
            broker.cancel(None, no, 4)
        monkeypatch.undo()
        reasons: Counter[object] = Counter()

        def again() -> None:
            for _ in range(20):
                outcome = broker.cancel(None, no, 1)
                with _COUNTING:
                    reasons[outcome.decision.reason] += 1

        assert run_threads([again] * THREADS) == []
        assert reasons == Counter({Refusal.OUTCOME_UNKNOWN: THREADS * 20})
        assert server.calls["kt10003"] == 1
        report = broker.reconcile()
        assert report.clean, report
        broker.close()


def place_orders_n(broker: KiwoomBroker, n: int) -> list[str]:
    return [
        broker.place(stk_cd="005930", side=Side.BUY, qty=10, price=FAR_BELOW).ord_no
        for _ in range(n)
    ]
