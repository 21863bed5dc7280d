"""The real-time feed client against sim-server, over real WebSockets on loopback: login, PING,
REG, frames to events, duplicates, reconnects with a reconcile first, frames that beat the REST
answer, SYSTEM, and a strategy thread cancelling while fills stream in."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from adapters.kiwoom.broker import KiwoomBroker
from adapters.kiwoom.client import KiwoomClient
from adapters.kiwoom.errors import ConfigError
from adapters.kiwoom.feed import MOCK_WS_URL, REAL_WS_URL, KiwoomFeed, check_ws_url
from adapters.kiwoom.simserver import Fault, FaultKind, SimServer
from adapters.kiwoom.ws_server import WsFault, WsFaultKind
from engine import EngineError, OrderBook, OrderState, Side
from engine import events as ev


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition never came true")
        time.sleep(0.01)


class Desk:
    """A book under one lock, the broker as it is today, and the feed wired to both."""

    def __init__(self, server: SimServer, **feed_options: Any) -> None:
        self.server = server
        self.client = KiwoomClient(
            server.base_url, appkey="app", secretkey="sec", allow_loopback=True, rates={"*": None}
        )
        self.book = OrderBook()
        self.lock = threading.Lock()
        self.broker = KiwoomBroker(self.client, self.book)
        self.calls: list[str] = []  # "reconcile" and "events", in the order they happened
        self.refused: list[tuple[ev.Event, str]] = []
        self.parked_seen = 0
        self.reconcile_pause = 0.0
        self.during_reconcile: Callable[[], None] | None = None
        options: dict[str, Any] = {"backoff": (0.05, 0.4), "rng": random.Random(1)}
        options.update(feed_options)
        self.feed = KiwoomFeed.for_broker(
            self.client,
            on_events=self.apply_events,
            on_connected=self.reconcile,
            url=server.ws_url,
            allow_loopback=True,
            **options,
        )

    def apply_events(self, events: list[ev.Event]) -> None:
        with self.lock:
            self.calls.append("events")
            for event in events:
                try:
                    self.book.apply(event)
                except EngineError as exc:
                    self.refused.append((event, str(exc)))
            self.parked_seen = max(self.parked_seen, len(self.book.parked))

    def reconcile(self) -> None:
        if self.during_reconcile is not None:
            self.during_reconcile()
        time.sleep(self.reconcile_pause)
        with self.lock:
            self.calls.append("reconcile")
            self.broker.reconcile()

    def place(self, qty: int, price: int, side: Side = Side.BUY) -> str:
        with self.lock:
            ticket = self.broker.place(stk_cd="005930", side=side, qty=qty, price=price)
        assert ticket.ord_no, ticket
        return ticket.ord_no

    def cancel(self, ord_no: str, qty: int) -> Any:
        with self.lock:
            return self.broker.cancel(self.book, ord_no, qty)

    def matches_truth(self, *numbers: str) -> bool:
        with self.lock:
            for no in numbers or tuple(self.book.orders):
                truth = self.server.truth(no)
                order = self.book.orders.get(no)
                if order is None or (order.filled_qty, order.leaves_qty, order.state) != (
                    truth.filled,
                    truth.leaves,
                    truth.state,
                ):
                    return False
        return True

    def close(self) -> None:
        self.feed.stop()
        self.client.close()


@pytest.fixture
def server() -> Iterator[SimServer]:
    with SimServer(market=False, rate=None, ws_ping_interval=0.25) as sim:
        yield sim


@pytest.fixture
def desk(server: SimServer) -> Iterator[Desk]:
    made = Desk(server)
    try:
        yield made
    finally:
        made.close()


def test_it_logs_in_registers_echoes_pings_and_maps_frames_to_the_book(
    server: SimServer, desk: Desk
) -> None:
    with desk.feed:
        assert desk.feed.wait_connected(5)
        assert desk.calls == ["reconcile"]
        a = desk.place(10, 70_000)
        b = desk.place(5, 71_000, Side.SELL)
        server.trade("005930", 70_000, 4)
        server.trade("005930", 71_000, 5)
        desk.cancel(a, 2)
        wait_until(lambda: desk.matches_truth(a, b))
        time.sleep(0.8)  # three PINGs: the session survives only by echoing them
        assert desk.feed.connected and server.feed.sessions == 1
        assert desk.feed.stats.pings >= 2
        stats = desk.feed.stats
        assert (stats.connects, stats.bad_frames, stats.callback_errors) == (1, 0, 0)
        assert stats.events >= 8
    assert desk.book.get(a).state is OrderState.PARTIALLY_FILLED
    assert (desk.book.get(a).filled_qty, desk.book.get(a).cancelled_qty) == (4, 2)
    assert desk.book.get(b).state is OrderState.FILLED
    assert not desk.feed.running and desk.feed.stop_reason == "stopped"


def test_duplicate_frames_are_dropped_and_count_once(server: SimServer, desk: Desk) -> None:
    with desk.feed:
        assert desk.feed.wait_connected(5)
        a = desk.place(10, 70_000)
        server.inject_ws(WsFault(WsFaultKind.DUPLICATE, times=20))
        for _ in range(3):
            server.trade("005930", 70_000, 2)
        wait_until(lambda: desk.feed.stats.duplicates >= 3)
        wait_until(lambda: desk.matches_truth(a))
    assert desk.book.get(a).filled_qty == 6
    assert not desk.refused


def test_a_reconnect_reconciles_before_delivering_and_misses_nothing(
    server: SimServer, desk: Desk
) -> None:
    with desk.feed:
        assert desk.feed.wait_connected(5)
        a = desk.place(10, 70_000)
        wait_until(lambda: "events" in desk.calls)
        wait_until(lambda: desk.matches_truth(a))
        # The next reconcile sees a fill happen as it starts; its frame is held until after it.
        desk.during_reconcile = lambda: server.trade("005930", 70_000, 2)
        desk.reconcile_pause = 0.3
        with desk.lock:
            desk.calls.append("drop")
        server.inject_ws(WsFault(WsFaultKind.DROP))
        wait_until(lambda: not desk.feed.connected)
        server.trade("005930", 70_000, 3)  # while nobody listens: only REST will tell
        assert desk.feed.wait_connected(5)
        wait_until(lambda: desk.matches_truth(a))
        wait_until(lambda: desk.calls[-1] == "events")  # the held frame, after the reconcile
        after = desk.calls[desk.calls.index("drop") + 1 :]
        assert after[0] == "reconcile" and after.count("reconcile") == 1
        assert desk.calls.count("reconcile") == 2
        stats = desk.feed.stats
        assert (stats.connects, stats.disconnects) == (2, 1)
        assert stats.reconnect_seconds is not None and stats.reconnect_seconds < 2
    assert desk.book.get(a).filled_qty == 5


def test_frames_that_beat_the_rest_answer_are_parked_then_applied(
    server: SimServer, desk: Desk
) -> None:
    with desk.feed:
        assert desk.feed.wait_connected(5)
        server.trade("005930", 70_000, 3)  # volume left: the next buy fills at once
        server.inject(Fault(FaultKind.DELAY, "kt10000", delay=0.3))  # the answer comes late
        server.inject_ws(WsFault(WsFaultKind.DELAY, times=1, delay=0.6))  # and 접수 later still
        # The strategy does not hold the book's lock during the HTTP call (a one-writer broker
        # does not either): 확인 and 체결 reach the book before anything names the order.
        answer = desk.client.place(stk_cd="005930", side=Side.BUY, qty=5, price=70_000)
        a = answer.ord_no
        assert desk.parked_seen >= 2 and a not in desk.book
        with desk.lock:
            desk.book.apply(ev.OrderAccepted(a, "005930", Side.BUY, 5, 70_000, "KRX"))
        wait_until(lambda: desk.matches_truth(a))
        assert not desk.book.parked
    assert desk.book.get(a).filled_qty == 3 and not desk.refused


def test_a_system_message_stops_the_feed_which_does_not_fight(
    server: SimServer, desk: Desk
) -> None:
    stopped: list[str] = []
    desk.feed.on_stopped = stopped.append
    with desk.feed:
        assert desk.feed.wait_connected(5)
        other = desk.client.tokens.token().reveal()  # another session of the same app key logs in
        with connect(server.ws_endpoint) as rival:
            rival.send(json.dumps({"trnm": "LOGIN", "token": other}))
            assert json.loads(rival.recv(timeout=2))["return_code"] == 0
            assert desk.feed.wait_stopped(3)
            time.sleep(0.3)
            assert server.feed.logins == 2  # the feed did not log in again
        assert "replaced" in desk.feed.stop_reason
        assert stopped == [desk.feed.stop_reason]
        assert not desk.feed.connected and not desk.feed.running


def test_a_refused_token_is_issued_again_once(server: SimServer, desk: Desk) -> None:
    with desk.feed:
        assert desk.feed.wait_connected(5)
        issued = desk.client.tokens.issued
        server.expire_tokens()
        server.inject_ws(WsFault(WsFaultKind.DROP))
        wait_until(lambda: desk.feed.stats.connects == 2)
        assert desk.feed.stats.token_reissues == 1
        assert desk.client.tokens.issued == issued + 1


def test_a_frame_that_cannot_be_mapped_is_reported_and_the_feed_goes_on(
    server: SimServer, desk: Desk
) -> None:
    bad: list[tuple[str, Exception]] = []
    desk.feed.on_bad_frame = lambda text, exc: bad.append((text, exc))
    with desk.feed:
        assert desk.feed.wait_connected(5)
        entry = {"type": "00", "name": "주문체결", "item": "005930", "values": {"9203": "x"}}
        server.feed.publish([{"trnm": "REAL", "data": [entry]}])
        a = desk.place(1, 70_000)
        wait_until(lambda: desk.matches_truth(a) and bool(bad))
    assert desk.feed.stats.bad_frames == 1 and "x" in bad[0][0]


def test_stop_is_prompt_while_waiting_to_reconnect(server: SimServer) -> None:
    desk = Desk(server, backoff=(5.0, 5.0))
    try:
        desk.feed.start()
        assert desk.feed.wait_connected(5)
        server.inject_ws(WsFault(WsFaultKind.DROP))
        wait_until(lambda: not desk.feed.connected)
        started = time.monotonic()
        desk.feed.stop()
        assert time.monotonic() - started < 1.0
        assert desk.feed.wait_stopped(0)
    finally:
        desk.close()


def test_the_backoff_is_capped_exponential_with_seeded_jitter(server: SimServer) -> None:
    def delays(seed: int) -> list[float]:
        feed = Desk(server, backoff=(0.5, 8.0), rng=random.Random(seed)).feed
        return [feed._delay(n) for n in range(8)]

    first = delays(3)
    assert first == delays(3) and first != delays(4)
    ceilings = [0.5, 1, 2, 4, 8, 8, 8, 8]
    assert all(c / 2 <= d <= c for d, c in zip(first, ceilings, strict=True))


def test_urls_are_checked_like_the_rest_ones(server: SimServer) -> None:
    assert check_ws_url(REAL_WS_URL) == "wss://api.kiwoom.com:10000/api/dostk/websocket"
    assert check_ws_url(MOCK_WS_URL + "/api/dostk/websocket").startswith("wss://mockapi.")
    for bad in (
        "ws://api.kiwoom.com:10000",
        "wss://api.kiwoom.com:443",
        "wss://example.com:10000",
        "ws://127.0.0.1:1/other",
        "wss://user:pw@api.kiwoom.com:10000",
    ):
        with pytest.raises(ConfigError):
            check_ws_url(bad, allow_loopback=True)
    with pytest.raises(ConfigError):
        check_ws_url(server.ws_url)  # loopback only when allowed
    with (
        KiwoomClient(server.base_url, appkey="a", secretkey="b", allow_loopback=True) as client,
        pytest.raises(ConfigError, match="pass url="),
    ):
        KiwoomFeed.for_broker(client, on_events=print, on_connected=print)
    with KiwoomClient("https://mockapi.kiwoom.com", appkey="a", secretkey="b") as mock:
        feed = KiwoomFeed.for_broker(mock, on_events=print, on_connected=print)
        assert feed.url == MOCK_WS_URL + "/api/dostk/websocket"


def test_a_strategy_cancelling_while_fills_stream_in_loses_no_share() -> None:
    with SimServer(rate=None, step_ms=10, ws_ping_interval=0.2, seed=11) as server:
        desk = Desk(server)
        try:
            desk.feed.start()
            assert desk.feed.wait_connected(5)
            rng = random.Random(5)
            placed: list[str] = []
            errors: list[BaseException] = []

            def strategy() -> None:
                try:
                    for i in range(30):
                        price = server.exchange.last_price("005930") or 0
                        if price == 0:  # the first order gives the symbol a price walk
                            placed.append(desk.place(5, 60_000))
                            continue
                        side = Side.BUY if i % 2 else Side.SELL
                        placed.append(desk.place(rng.randint(3, 20), price, side))
                        time.sleep(0.01)
                        target = rng.choice(placed)
                        desk.cancel(target, rng.choice([0, 1, 2]))
                except BaseException as exc:
                    errors.append(exc)

            thread = threading.Thread(target=strategy)
            thread.start()
            thread.join(20)
            assert not thread.is_alive() and not errors
            for no in placed:  # cancel what is left, then let the stream settle
                desk.cancel(no, 0)
            time.sleep(0.3)
            wait_until(lambda: desk.matches_truth(*placed), timeout=5)
            filled = sum(desk.book.get(no).filled_qty for no in placed)
            assert filled > 0 and desk.feed.stats.events > 60
            for no in placed:
                order = desk.book.get(no)
                truth = server.truth(no)
                assert (
                    order.filled_qty + order.cancelled_qty + order.replaced_qty + (order.leaves_qty)
                    == order.qty
                )
                assert (order.cancelled_qty, order.leaves_qty) == (truth.cancelled, truth.leaves)
        finally:
            desk.close()


def test_a_second_refusal_after_a_new_token_stops_the_feed(server: SimServer, desk: Desk) -> None:
    server.feed._check_token = lambda _token: None  # every LOGIN is refused from now on
    with desk.feed:
        assert desk.feed.wait_stopped(5)
        assert desk.feed.stats.token_reissues == 1 and desk.feed.stats.connects == 0
        assert "refused again" in desk.feed.stop_reason and "8005" in desk.feed.stop_reason
        assert desk.calls == []  # never reconciled, never delivered


def test_a_failed_reconcile_delivers_nothing_and_reconnects_to_reconcile_again(
    server: SimServer, desk: Desk
) -> None:
    failures = [RuntimeError("REST is down")]

    def flaky() -> None:
        with desk.lock:
            desk.calls.append("attempt")
        if failures:
            server.trade("005930", 70_000, 1)  # a frame that must wait for a good reconcile
            time.sleep(0.1)
            raise failures.pop()
        desk.reconcile()

    with desk.lock:
        a = desk.broker.place(stk_cd="005930", side=Side.BUY, qty=3, price=70_000).ord_no
    desk.feed.on_connected = flaky
    with desk.feed:
        assert desk.feed.wait_connected(5)
        wait_until(lambda: desk.matches_truth(a))
        assert desk.calls[:3] == ["attempt", "attempt", "reconcile"]
        assert desk.feed.stats.callback_errors == 1 and desk.feed.stats.connects == 1
    assert desk.book.get(a).filled_qty == 1


@pytest.mark.parametrize(
    "answer",
    [
        {"trnm": "LOGIN", "return_code": 8005, "return_msg": "Token이 유효하지 않습니다"},
        {
            "trnm": "LOGIN",
            "return_code": 1,
            "return_msg": "인증 실패 [8005:Token이 유효하지 않습니다]",
        },
        {"trnm": "LOGIN", "return_code": 3, "return_msg": "CODE=8031 투자구분이 달라서"},
    ],
)
def test_auth_codes_are_found_at_the_top_or_inside_the_message(answer: dict[str, Any]) -> None:
    from adapters.kiwoom.feed import _auth_code

    assert _auth_code(answer) in ("8005", "8031")
    assert _auth_code({"return_code": 1, "return_msg": "LOGIN이 필요합니다"}) == ""
    assert _auth_code({"return_code": 1, "return_msg": "종목코드 18005 오류"}) == ""


def test_wired_to_the_one_writer_broker_a_cancelling_strategy_loses_no_share(
    tmp_path: Path,
) -> None:
    """The integrator's wiring, end to end: KiwoomFeed.for_broker(client,
    on_events=broker.apply_events, on_connected=broker.reconcile), a journal, a strategy thread
    calling the broker with no lock of its own while fills stream in; then a broker replayed
    from the journal agrees with the exchange too."""
    with SimServer(rate=None, step_ms=10, ws_ping_interval=0.2, seed=3) as server:
        client = KiwoomClient(
            server.base_url, appkey="app", secretkey="sec", allow_loopback=True, rates={"*": None}
        )
        journal = tmp_path / "journal.sqlite3"
        broker = KiwoomBroker(client, journal=journal)
        feed = KiwoomFeed.for_broker(
            client,
            on_events=broker.apply_events,
            on_connected=broker.reconcile,
            url=server.ws_url,
            allow_loopback=True,
            backoff=(0.05, 0.4),
        )
        placed: list[str] = []
        errors: list[BaseException] = []
        rng = random.Random(9)

        def strategy() -> None:
            try:
                placed.append(
                    broker.place(stk_cd="005930", side=Side.BUY, qty=5, price=60_000).ord_no
                )
                for i in range(24):
                    price = server.exchange.last_price("005930") or 60_000
                    side = Side.BUY if i % 2 else Side.SELL
                    ticket = broker.place(
                        stk_cd="005930", side=side, qty=rng.randint(3, 20), price=price
                    )
                    placed.append(ticket.ord_no)
                    if i == 12:
                        server.inject_ws(WsFault(WsFaultKind.DROP))  # a reconnect mid-stream
                    broker.cancel(None, rng.choice(placed), rng.choice([0, 1, 2]))
            except BaseException as exc:
                errors.append(exc)

        with client, feed:
            assert feed.wait_connected(5)
            thread = threading.Thread(target=strategy)
            thread.start()
            thread.join(20)
            assert not thread.is_alive() and not errors
            for no in placed:
                broker.cancel(None, no, 0)

            def agrees(book: OrderBook) -> bool:
                for no in placed:
                    order, truth = book.orders.get(no), server.truth(no)
                    if order is None or (
                        order.filled_qty,
                        order.cancelled_qty,
                        order.leaves_qty,
                    ) != (
                        truth.filled,
                        truth.cancelled,
                        truth.leaves,
                    ):
                        return False
                return True

            def settled() -> bool:
                with broker.lock:
                    return agrees(broker.book)

            wait_until(lambda: feed.stats.connects == 2, timeout=8)  # reconnected, reconciled
            wait_until(settled, timeout=8)
            assert feed.stats.events > 40
            with broker.lock:
                assert sum(broker.book.get(no).filled_qty for no in placed) > 0
            broker.close()
        replayed = KiwoomBroker(
            KiwoomClient(server.base_url, appkey="app", secretkey="sec", allow_loopback=True),
            journal=journal,
        )
        try:
            assert agrees(replayed.book)  # every event the feed applied was journalled
        finally:
            replayed.close()
