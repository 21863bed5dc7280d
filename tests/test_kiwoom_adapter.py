"""The Kiwoom adapter against the Kiwoom-compatible simulator, over real HTTP on loopback."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.broker import CancelStatus, TicketStatus
from adapters.kiwoom.broker import NOT_RECEIVED, KiwoomBroker
from adapters.kiwoom.client import KiwoomClient
from adapters.kiwoom.errors import (
    ConfigError,
    InputError,
    KiwoomError,
    StaleBook,
    TokenInvalid,
    TokenUnavailable,
    TransportError,
)
from adapters.kiwoom.realtime import events_from_values
from adapters.kiwoom.simserver import Fault, FaultKind, SimServer
from engine import OrderBook, OrderState, Refusal, Side
from engine import events as ev
from engine.sessions import KST

APPKEY = "test-appkey-5f1c9e"
SECRET = "test-secretkey-a77b02"
FAR_BELOW = 50_000  # a buy limit far below 005930's price: it rests and never fills by itself


@pytest.fixture
def server() -> Iterator[SimServer]:
    with SimServer(seed=11, rate=None, market=False, page_size=2) as srv:
        yield srv


def make_client(server: SimServer, **kwargs: object) -> KiwoomClient:
    options: dict[str, object] = {
        "appkey": APPKEY,
        "secretkey": SECRET,
        "allow_loopback": True,
        "rates": {"*": None},
        "timeout": (1.0, 0.4),
        "throttle_pause": 0.05,
    }
    options.update(kwargs)
    return KiwoomClient(server.base_url, **options)  # type: ignore[arg-type]


@pytest.fixture
def client(server: SimServer) -> Iterator[KiwoomClient]:
    with make_client(server) as c:
        yield c


@pytest.fixture
def broker(client: KiwoomClient) -> KiwoomBroker:
    return KiwoomBroker(client, OrderBook(), unknown_grace=timedelta(0))


def place(
    broker: KiwoomBroker, qty: int = 10, price: int = FAR_BELOW, stk_cd: str = "005930"
) -> str:
    ticket = broker.place(stk_cd=stk_cd, side=Side.BUY, qty=qty, price=price)
    assert ticket.status is TicketStatus.ACCEPTED, ticket
    return ticket.ord_no


def assert_book_matches_truth(book: OrderBook, server: SimServer) -> None:
    """Every order on the simulator's exchange is in the book with the same quantities."""
    with server.lock:
        truth = {no: server.truth(no) for no in server.exchange.orders}
    assert set(truth) <= set(book.orders)
    for no, t in truth.items():
        o = book.orders[no]
        got = (o.filled_qty, o.cancelled_qty, o.replaced_qty, o.leaves_qty, o.state)
        assert got == (t.filled, t.cancelled, t.replaced, t.leaves, t.state), (no, o, t)
        assert o.pending_cancel_qty == 0 and not o.cancel_all_pending, o


def kt10003_bodies(server: SimServer) -> list[dict[str, object]]:
    """The kt10003 bodies the simulator's order server really processed."""
    return [call.body for call in server.log if call.api_id == "kt10003" and call.processed]


# -- place, partial cancel, cancel all ---
def test_place_partial_cancel_then_cancel_all(broker: KiwoomBroker, server: SimServer) -> None:
    book = broker.book
    no = place(broker, qty=10)
    assert book.orders[no].state is OrderState.RECEIVED
    partial = broker.cancel(book, no, 4)
    assert partial.status is CancelStatus.ACCEPTED and partial.ticket is not None
    assert book.orders[no].pending_cancel_qty == 4
    assert kt10003_bodies(server)[-1] == {
        "dmst_stex_tp": "KRX",
        "orig_ord_no": no,
        "stk_cd": "005930",
        "cncl_qty": "4",
    }
    report = broker.reconcile()
    assert report.clean, report
    order = book.orders[no]
    assert (order.cancelled_qty, order.leaves_qty, order.pending_cancel_qty) == (4, 6, 0)
    everything = broker.cancel(book, no, "0")
    assert everything.status is CancelStatus.ACCEPTED
    assert kt10003_bodies(server)[-1]["cncl_qty"] == "0"
    broker.reconcile()
    assert book.orders[no].state is OrderState.CANCELLED and book.orders[no].cancelled_qty == 10
    assert_book_matches_truth(book, server)


def test_a_fill_that_beat_the_cancel_is_kept(broker: KiwoomBroker, server: SimServer) -> None:
    book = broker.book
    no = place(broker, qty=10, price=70_000)
    outcome_before = broker.cancel(book, no, "0")
    assert outcome_before.status is CancelStatus.ACCEPTED
    broker.reconcile()
    assert_book_matches_truth(book, server)
    # an order filled on the exchange before the engine heard of it: RC4033, nothing reserved
    other = place(broker, qty=5, price=70_000)
    server.trade("005930", 70_000, 5)
    rejected = broker.cancel(book, other, "0")
    assert rejected.status is CancelStatus.REJECTED and rejected.ticket is not None
    assert rejected.ticket.code == "RC4033"
    assert book.orders[other].pending_cancel_qty == 0 and not book.orders[other].cancel_all_pending
    report = broker.reconcile()
    assert report.clean, report
    assert book.orders[other].state is OrderState.FILLED
    assert_book_matches_truth(book, server)


def test_refused_cancels_make_no_http_call(broker: KiwoomBroker, server: SimServer) -> None:
    book = broker.book
    no = place(broker, qty=10)
    assert broker.cancel(book, no, "0").status is CancelStatus.ACCEPTED
    sent = server.calls["kt10003"]
    refusals = [
        (broker.cancel(book, no, 1), Refusal.CANCEL_ALL_PENDING),
        (broker.cancel(book, "0999999", "0"), Refusal.UNKNOWN_ORDER),
        (broker.cancel(book, no, "-1"), Refusal.INVALID_QUANTITY),
    ]
    broker.reconcile()
    refusals.append((broker.cancel(book, no, "0"), Refusal.ALREADY_CANCELLED))
    other = place(broker, qty=3)
    refusals.append((broker.cancel(book, other, 4), Refusal.EXCEEDS_CANCELLABLE))
    for outcome, reason in refusals:
        assert outcome.status is CancelStatus.REFUSED and outcome.decision.reason is reason
        assert outcome.ticket is None
    assert server.calls["kt10003"] == sent


def test_a_cancel_of_a_modified_order_goes_to_its_successor(
    broker: KiwoomBroker, server: SimServer
) -> None:
    book = broker.book
    no = place(broker, qty=10)
    ticket = broker.modify(orig_ord_no=no, stk_cd="005930", qty=0, price=FAR_BELOW + 100)
    assert ticket.status is TicketStatus.ACCEPTED and ticket.ord_no != no
    report = broker.reconcile()
    assert report.clean, report
    assert book.orders[no].state is OrderState.REPLACED
    sent = server.calls["kt10003"]
    refused = broker.cancel(book, no, "0")
    assert refused.decision.reason is Refusal.REPLACED
    assert refused.decision.successor == ticket.ord_no
    assert server.calls["kt10003"] == sent
    assert broker.cancel(book, ticket.ord_no, "0").status is CancelStatus.ACCEPTED
    broker.reconcile()
    assert_book_matches_truth(book, server)


# -- continuation ---
def test_status_lists_follow_every_page(broker: KiwoomBroker, server: SimServer) -> None:
    numbers = [place(broker, qty=1 + i) for i in range(7)]
    broker.cancel(broker.book, numbers[0], "0")
    pages_before = server.calls["ka10075"]
    rows = broker.client.open_orders()
    assert [r.ord_no for r in rows] == numbers[1:]  # the cancelled one is no longer open
    assert server.calls["ka10075"] - pages_before == 3  # 6 rows, 2 per page
    details = broker.client.order_details(datetime.now(KST).date())
    assert len({d.ord_no for d in details}) == len(details) == 8  # 7 orders + 1 cancel
    # a reconciler that read one page would lose orders: this one rebuilds the whole book
    fresh = KiwoomBroker(broker.client, OrderBook())
    report = fresh.reconcile()
    assert report.clean, report
    assert set(fresh.book.orders) == set(numbers)
    assert_book_matches_truth(fresh.book, server)


# -- tokens ---
def test_a_token_that_expires_mid_run_is_reissued_once(
    broker: KiwoomBroker, server: SimServer
) -> None:
    no = place(broker)
    assert broker.client.tokens.issued == 1
    server.expire_tokens()
    assert broker.cancel(broker.book, no, 3).status is CancelStatus.ACCEPTED
    assert broker.client.tokens.issued == 2
    assert server.calls["kt10003"] == 2  # refused for its token (not processed), then sent again
    assert len(kt10003_bodies(server)) >= 1


def test_the_token_is_refreshed_ahead_of_its_expiry(server: SimServer) -> None:
    clock = [datetime.now(UTC)]
    with make_client(server, now=lambda: clock[0], refresh_margin=timedelta(minutes=10)) as c:
        c.open_orders()
        expires = c.tokens.expires_at
        assert expires is not None and expires.utcoffset() == timedelta(hours=9)
        assert expires - clock[0] > timedelta(hours=23)  # read as Korea time, not as UTC
        clock[0] = expires - timedelta(minutes=9)
        c.open_orders()
        assert c.tokens.issued == 2


def test_a_second_8005_is_raised_not_looped(server: SimServer) -> None:
    with make_client(server) as c:
        c.open_orders()
        original = c.tokens.token
        c.tokens.token = lambda: "not-a-valid-token"  # type: ignore[method-assign]
        with pytest.raises(TokenInvalid) as err:
            c.open_orders()
        assert err.value.code == "8005"
        c.tokens.token = original  # type: ignore[method-assign]


def test_close_revokes_the_token(server: SimServer) -> None:
    c = make_client(server)
    c.open_orders()
    token = c.tokens.token()
    c.close()
    with make_client(server) as other:
        other.tokens.token = lambda: token  # type: ignore[method-assign]
        with pytest.raises(TokenInvalid):
            other.call("ka10075", {"all_stk_tp": "0", "trde_tp": "0", "stk_cd": "", "stex_tp": "0"})


def test_tokens_never_go_to_an_unexpected_host() -> None:
    with pytest.raises(ConfigError):
        KiwoomClient("https://example.com", appkey=APPKEY, secretkey=SECRET)
    with pytest.raises(ConfigError):
        KiwoomClient("http://127.0.0.1:9", appkey=APPKEY, secretkey=SECRET)


def test_bad_input_is_refused_before_anything_is_sent(
    client: KiwoomClient, server: SimServer
) -> None:
    before = sum(server.calls.values())
    for bad in (
        {"orig_ord_no": "140", "stk_cd": "005930", "qty": "0"},
        {"orig_ord_no": "0000140", "stk_cd": "KRX:005930", "qty": "0"},
        {"orig_ord_no": "0000140", "stk_cd": "005930", "qty": "1.5"},
        {"orig_ord_no": "0000140", "stk_cd": "005930", "qty": "0", "exchange": "NYSE"},
    ):
        with pytest.raises(InputError):
            client.cancel(**bad)  # type: ignore[arg-type]
    assert sum(server.calls.values()) == before


# -- pacing ---
def test_a_burst_of_50_cancels_under_5_per_second_gets_no_429(server: SimServer) -> None:
    server.set_rate("kt10003", 5)
    with make_client(server, rates={"*": None, "kt10003": 5}) as c:
        broker = KiwoomBroker(c, OrderBook())
        numbers = [place(broker, qty=2) for _ in range(50)]
        outcomes = [broker.cancel(broker.book, no, "0") for no in numbers]
    assert [o.status for o in outcomes] == [CancelStatus.ACCEPTED] * 50
    assert server.throttled == 0 and c.throttled == 0


def test_the_allowed_rate_is_learned_from_a_1700_answer(server: SimServer) -> None:
    server.set_rate("kt10003", 2)
    with make_client(server) as c:
        broker = KiwoomBroker(c, OrderBook())
        numbers = [place(broker, qty=2) for _ in range(5)]
        outcomes = [broker.cancel(broker.book, no, "0") for no in numbers]
        assert [o.status for o in outcomes] == [CancelStatus.ACCEPTED] * 5
        assert c.throttled >= 1 and c.pacer.rate("kt10003") == 2
    # every throttled request was unprocessed; each cancel was processed exactly once
    assert [b["orig_ord_no"] for b in kt10003_bodies(server)] == numbers


def test_throttled_past_the_retries_is_rejected_and_released(server: SimServer) -> None:
    with make_client(server, throttle_retries=1) as c:
        broker = KiwoomBroker(c, OrderBook())
        no = place(broker)
        server.inject(Fault(FaultKind.HTTP_429, api_id="kt10003", times=2))
        outcome = broker.cancel(broker.book, no, "0")
        assert outcome.status is CancelStatus.REJECTED and outcome.ticket is not None
        assert outcome.ticket.code == "1700"
        assert broker.book.orders[no].cancellable_qty == 10  # released: sending again is safe
        assert broker.cancel(broker.book, no, "0").status is CancelStatus.ACCEPTED


# -- faults: unknown outcomes are reconciled, never re-sent blindly ---
FAULTS = [
    FaultKind.DELAY,
    FaultKind.CLOSE_BEFORE,
    FaultKind.CLOSE_AFTER,
    FaultKind.HTTP_500,
    FaultKind.FIREWALL_400,
    FaultKind.MALFORMED_JSON,
    FaultKind.SERVER_ERROR_1999,
    FaultKind.HTTP_429,
]


@pytest.mark.parametrize("kind", FAULTS, ids=lambda k: k.name)
@pytest.mark.parametrize("qty", ["0", "4"])
def test_every_fault_ends_with_the_book_equal_to_the_truth(
    broker: KiwoomBroker, server: SimServer, kind: FaultKind, qty: str
) -> None:
    book = broker.book
    no = place(broker, qty=10)
    server.inject(Fault(kind, api_id="kt10003", delay=0.8))
    outcome = broker.cancel(book, no, qty)
    sent = len(kt10003_bodies(server))
    if kind is FaultKind.HTTP_429:
        assert outcome.status is CancelStatus.ACCEPTED  # throttled: paused and sent again
    else:
        assert outcome.status is CancelStatus.UNKNOWN
        assert outcome.ticket is not None and outcome.ticket.status is TicketStatus.UNKNOWN
        assert broker.unknown == (outcome.request.request_id,)  # type: ignore[union-attr]
        # still reserved: the engine refuses a second cancel of the same shares
        again = broker.cancel(book, no, "0" if qty == "0" else 7)
        assert again.status is CancelStatus.REFUSED
        assert len(kt10003_bodies(server)) == sent
    server.wait_idle()
    report = broker.reconcile()
    assert report.refused == [] and report.discrepancies == [], report
    assert broker.unknown == ()
    order = book.orders[no]
    processed = kind.processed or kind is FaultKind.HTTP_429  # 429: paused, sent again
    if processed:
        assert order.cancelled_qty == (10 if qty == "0" else 4)
        assert len(kt10003_bodies(server)) == 1
    else:
        # no trace on the server: released (definitively), so sending it again is now safe
        assert order.cancelled_qty == 0 and order.cancellable_qty == 10
        assert broker.cancel(book, no, qty).status is CancelStatus.ACCEPTED
        broker.reconcile()
        assert order.cancelled_qty == (10 if qty == "0" else 4)
    assert_book_matches_truth(book, server)


def test_an_unknown_cancel_stays_pending_within_the_grace(server: SimServer) -> None:
    with make_client(server) as c:
        broker = KiwoomBroker(c, OrderBook(), unknown_grace=timedelta(minutes=5))
        no = place(broker)
        server.inject(Fault(FaultKind.CLOSE_BEFORE, api_id="kt10003"))
        outcome = broker.cancel(broker.book, no, "0")
        assert outcome.status is CancelStatus.UNKNOWN
        report = broker.reconcile()
        assert report.unresolved == [outcome.request.request_id]  # type: ignore[union-attr]
        assert broker.book.orders[no].cancel_all_pending
        assert broker.cancel(broker.book, no, "0").status is CancelStatus.REFUSED
        assert server.calls["kt10003"] == 1


def test_reconcile_starts_an_empty_book_from_the_account(
    broker: KiwoomBroker, server: SimServer
) -> None:
    a = place(broker, qty=10, price=70_000)
    b = place(broker, qty=6)
    server.trade("005930", 70_000, 3)
    broker.cancel(broker.book, b, 2)
    fresh = KiwoomBroker(broker.client, OrderBook())
    report = fresh.reconcile()
    assert report.clean, report
    assert fresh.book.orders[a].filled_qty == 3 and fresh.book.orders[b].cancelled_qty == 2
    assert_book_matches_truth(fresh.book, server)
    again = fresh.reconcile()  # idempotent: nothing new to apply
    assert again.applied == [] and again.clean


# -- answers that do not say what happened, and unknowns that must not be guessed ---
class OddEchoServer(SimServer):
    """Accepts cancels but echoes their quantity signed and their root blank."""

    def _cancel(self, day: Any, body: Any) -> dict[str, Any]:
        payload = super()._cancel(day, body)
        if payload.get("return_code") == 0:
            payload["cncl_qty"] = "-" + payload["cncl_qty"][1:]
            payload["base_orig_ord_no"] = "   "
        return payload


class NoNumberServer(SimServer):
    """Carries out cancels but answers them without a readable order number."""

    def _cancel(self, day: Any, body: Any) -> dict[str, Any]:
        payload = super()._cancel(day, body)
        payload["ord_no"] = "ABC"
        return payload


class JsonErrorServer(SimServer):
    """Carries out cancels, then answers HTTP 500 with a Kiwoom-shaped input error."""

    def _process(self, *args: Any) -> Any:
        reply = super()._process(*args)
        if reply.api_id == "kt10003":
            reply.status = 500
            reply.payload = {"return_code": 5, "return_msg": "입력 값이 올바르지 않습니다"}
        return reply


def test_an_accepted_cancel_with_an_odd_echo_stays_accepted() -> None:
    with OddEchoServer(rate=None, market=False) as srv, make_client(srv) as c:
        broker = KiwoomBroker(c, OrderBook())
        no = place(broker, qty=10)
        outcome = broker.cancel(broker.book, no, 4)
        assert outcome.status is CancelStatus.ACCEPTED and outcome.ticket is not None
        assert broker.book.orders[no].pending_cancel_qty == 4  # still reserved
        assert broker.cancel(broker.book, no, 7).decision.reason is Refusal.EXCEEDS_CANCELLABLE
        assert len(kt10003_bodies(srv)) == 1
        assert broker.reconcile().clean
        assert_book_matches_truth(broker.book, srv)


@pytest.mark.parametrize("server_class", [NoNumberServer, JsonErrorServer])
def test_an_answer_that_does_not_prove_a_refusal_is_unknown_and_reconciled(
    server_class: type[SimServer],
) -> None:
    with server_class(rate=None, market=False) as srv, make_client(srv) as c:
        broker = KiwoomBroker(c, OrderBook(), unknown_grace=timedelta(0))
        no = place(broker, qty=10)
        outcome = broker.cancel(broker.book, no, "0")
        assert outcome.status is CancelStatus.UNKNOWN  # not REJECTED: that would free the shares
        assert broker.cancel(broker.book, no, "0").status is CancelStatus.REFUSED
        report = broker.reconcile()
        assert report.resolved == [outcome.request.request_id]  # type: ignore[union-attr]
        assert broker.book.orders[no].state is OrderState.CANCELLED
        assert len(kt10003_bodies(srv)) == 1
        assert_book_matches_truth(broker.book, srv)


def test_two_unknown_cancels_of_one_order_are_told_apart_by_size(
    broker: KiwoomBroker, server: SimServer
) -> None:
    book = broker.book
    no = place(broker, qty=10)
    # Two cancels on the wire at once (two threads reserved them), both answers lost. (One
    # after the other, the engine refuses the second: OUTCOME_UNKNOWN.)
    lost = book.request_cancel(no, 3)
    done = book.request_cancel(no, 2)
    server.inject(Fault(FaultKind.CLOSE_BEFORE, api_id="kt10003"))  # never reaches the server
    with pytest.raises(KiwoomError):
        broker.client.cancel(orig_ord_no=no, stk_cd="005930", qty=lost.cncl_qty)
    server.inject(Fault(FaultKind.CLOSE_AFTER, api_id="kt10003"))  # carried out, not answered
    with pytest.raises(KiwoomError):
        broker.client.cancel(orig_ord_no=no, stk_cd="005930", qty=done.cncl_qty)
    for request in (lost, done):
        book.apply(ev.CancelOutcomeUnknown(no, request.request_id))
    assert broker.cancel(book, no, 1).decision.reason is Refusal.OUTCOME_UNKNOWN
    report = broker.reconcile()
    assert report.discrepancies == [] and report.refused == []
    status = {c.request_id: c.status for c in book.orders[no].cancels}
    assert status == {lost.request_id: "rejected", done.request_id: "confirmed"}
    assert [e.code for e in report.applied if isinstance(e, ev.CancelRejected)] == [NOT_RECEIVED]
    assert len(kt10003_bodies(server)) == 1
    assert_book_matches_truth(book, server)


def test_a_row_that_fits_no_unknown_cancel_releases_none_of_them(
    broker: KiwoomBroker, server: SimServer
) -> None:
    book = broker.book
    no = place(broker, qty=10)
    server.inject(Fault(FaultKind.CLOSE_BEFORE, api_id="kt10003"))
    mine = broker.cancel(book, no, 3)
    # another client of the account cancels 2 shares of the same order
    with make_client(server) as other:
        other.cancel(orig_ord_no=no, stk_cd="005930", qty=2)
    report = broker.reconcile()
    assert report.unresolved == [mine.request.request_id]  # type: ignore[union-attr]
    assert any("fits none of the unanswered requests" in d for d in report.discrepancies)
    assert book.orders[no].pending_cancel_qty == 3  # never released on a guess
    assert broker.cancel(book, no, 8).status is CancelStatus.REFUSED  # 10 - 2 - 3 reserved


def test_an_unknown_cancel_the_venue_has_not_done_yet_is_found_not_released() -> None:
    with SimServer(rate=None, market=False, venue_ms=400) as srv, make_client(srv) as c:
        broker = KiwoomBroker(c, OrderBook(), unknown_grace=timedelta(0))
        book = broker.book
        no = place(broker, qty=10)
        srv.inject(Fault(FaultKind.CLOSE_AFTER, api_id="kt10003"))
        outcome = broker.cancel(book, no, "0")
        assert outcome.status is CancelStatus.UNKNOWN
        report = broker.reconcile()  # the cancel is on the server, still 접수
        assert report.resolved == [outcome.request.request_id]  # type: ignore[union-attr]
        [info] = book.orders[no].cancels
        assert info.cancel_no and info.status == "pending"
        assert broker.cancel(book, no, "0").status is CancelStatus.REFUSED
        srv.wait_idle()
        time.sleep(0.5)
        assert broker.reconcile().clean
        assert book.orders[no].state is OrderState.CANCELLED
        assert len(kt10003_bodies(srv)) == 1
        assert_book_matches_truth(book, srv)


def test_an_unknown_cancel_numbered_by_a_real_time_event_is_never_released() -> None:
    with SimServer(rate=None, market=False, venue_ms=400) as srv, make_client(srv) as c:
        broker = KiwoomBroker(c, OrderBook(), unknown_grace=timedelta(0))
        book = broker.book
        no = place(broker, qty=10)
        srv.inject(Fault(FaultKind.CLOSE_AFTER, api_id="kt10003"))
        assert broker.cancel(book, no, "0").status is CancelStatus.UNKNOWN
        [row] = [d for d in c.order_details(datetime.now(KST).date()) if d.kind == "취소"]
        frame = {
            "9203": row.ord_no, "904": no, "9001": "A005930", "913": "접수", "905": "매수취소",
            "900": "000000000010", "901": "50000", "902": "000000000010", "919": "0",
        }  # fmt: skip
        for event in events_from_values(frame, trade_date=datetime.now(KST).date()):
            book.apply(event)
        assert broker.unknown == ()  # numbered: an accepted cancel, not an unknown one
        assert broker.reconcile().applied == []  # still 접수 on the server: nothing released
        srv.wait_idle()
        time.sleep(0.5)
        broker.reconcile()
        assert book.orders[no].state is OrderState.CANCELLED
        assert len(kt10003_bodies(srv)) == 1
        assert_book_matches_truth(book, srv)


def test_reconciliation_and_real_time_executions_count_each_share_once(
    broker: KiwoomBroker, server: SimServer
) -> None:
    book = broker.book
    no = place(broker, qty=10, price=70_000)
    today = datetime.now(KST).date()

    def execution(exec_no: str, qty: int, cum: int) -> None:
        frame = {
            "9203": no, "904": "0000000", "9001": "A005930", "913": "체결", "905": "+매수",
            "900": "000000000010", "901": "70000", "902": f"{10 - cum:012d}",
            "911": f"{cum:012d}", "915": f"{qty:012d}", "914": "-70000", "909": exec_no,
        }  # fmt: skip
        for event in events_from_values(frame, trade_date=today):
            book.apply(event)

    server.trade("005930", 70_000, 3)
    assert broker.reconcile().clean  # kt00007: 3 filled; the execution is not here yet
    execution("0000001", 3, 3)  # the real-time feed catches up: the same 3 shares
    assert book.orders[no].filled_qty == 3
    server.trade("005930", 70_000, 2)
    server.trade("005930", 70_000, 1)
    execution("0000003", 1, 6)  # the second of two executions arrives first
    assert broker.reconcile().clean  # 6 filled on the account: shares 4-5 filled in
    execution("0000002", 2, 5)  # and then the first: counted already
    order = book.orders[no]
    assert (order.filled_qty, order.leaves_qty) == (6, 4) and book.anomalies == ()
    assert order.fill_notional == 6 * 70_000
    assert_book_matches_truth(book, server)


class OddRowServer(SimServer):
    """Lists one order of the day with a 정정/취소 kind this client has never seen."""

    odd = ""

    def _detail_rows_of(self, *args: Any) -> Any:
        for row in super()._detail_rows_of(*args):
            yield {**row, "mdfy_cncl": "기타"} if row["ord_no"] == self.odd else row


def test_an_unreadable_row_is_reported_and_releases_no_unknown_cancel() -> None:
    with OddRowServer(rate=None, market=False) as srv, make_client(srv) as c:
        broker = KiwoomBroker(c, OrderBook(), unknown_grace=timedelta(0))
        first = place(broker, qty=10)
        srv.inject(Fault(FaultKind.CLOSE_BEFORE, api_id="kt10003"))
        lost = broker.cancel(broker.book, first, "0")  # no trace on the server
        srv.odd = first
        report = broker.reconcile()
        assert any(f"unreadable row '{first}'" in d for d in report.discrepancies)
        assert report.unresolved == [lost.request.request_id]  # type: ignore[union-attr]
        assert broker.book.orders[first].cancel_all_pending  # kept: the row might have said
        srv.trade("005930", FAR_BELOW, 2)
        broker.reconcile()
        assert broker.book.orders[first].filled_qty == 0  # its row is unreadable: not guessed
        assert srv.truth(first).filled == 2
        srv.odd = ""
        assert broker.reconcile().resolved == [lost.request.request_id]  # type: ignore[union-attr]
        assert_book_matches_truth(broker.book, srv)


class StepClock:
    """A wall clock for the broker that gives queued instants, then stays at the last."""

    def __init__(self, start: datetime) -> None:
        self.queue = [start]

    def __call__(self) -> datetime:
        return self.queue.pop(0) if len(self.queue) > 1 else self.queue[0]


def test_the_grace_of_an_unknown_cancel_runs_from_when_it_failed_on_the_monotonic_clock(
    server: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    t0 = datetime.now(UTC)
    wall = StepClock(t0)
    elapsed = [1000.0]  # the broker's monotonic clock, in seconds
    with make_client(server) as c:
        broker = KiwoomBroker(
            c,
            OrderBook(),
            unknown_grace=timedelta(seconds=30),
            now=wall,
            clock=lambda: elapsed[0],
        )
        no = place(broker)
        server.inject(Fault(FaultKind.CLOSE_BEFORE, api_id="kt10003"))
        send = c.cancel

        def slow_cancel(**kwargs: Any) -> Any:
            elapsed[0] += 40  # a 40 s wait (pacing, a timeout) before the send failed
            return send(**kwargs)

        monkeypatch.setattr(c, "cancel", slow_cancel)
        outcome = broker.cancel(broker.book, no, "0")
        assert outcome.status is CancelStatus.UNKNOWN
        day = t0.astimezone(KST).date()
        elapsed[0] += 1
        assert broker.reconcile(day=day).unresolved == [outcome.request.request_id]  # type: ignore[union-attr]
        wall.queue = [t0 + timedelta(seconds=45)]  # the wall clock jumps: the grace does not
        assert broker.reconcile(day=day).unresolved == [outcome.request.request_id]  # type: ignore[union-attr]
        elapsed[0] += 30
        assert broker.reconcile(day=day).resolved == [outcome.request.request_id]  # type: ignore[union-attr]
        assert broker.book.orders[no].cancellable_qty == 10


def test_a_cancel_that_could_not_get_a_token_was_not_sent(server: SimServer) -> None:
    with make_client(server) as c:
        broker = KiwoomBroker(c, OrderBook())
        no = place(broker)
        server.expire_tokens()  # the next kt10003 gets 8005; its new token request is lost
        server.inject(Fault(FaultKind.CLOSE_AFTER, api_id="au10001"))
        outcome = broker.cancel(broker.book, no, "0")
        assert outcome.status is CancelStatus.REJECTED and outcome.ticket is not None
        assert outcome.ticket.code == "TokenUnavailable"
        assert broker.book.orders[no].cancellable_qty == 10 and broker.unknown == ()
        assert kt10003_bodies(server) == []
        assert broker.cancel(broker.book, no, "0").status is CancelStatus.ACCEPTED


def test_an_interrupted_cancel_is_left_unknown_for_reconciliation(
    broker: KiwoomBroker, server: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    no = place(broker)

    def interrupted(**_kwargs: object) -> None:
        raise RuntimeError("interrupted while sending")

    monkeypatch.setattr(broker.client, "cancel", interrupted)
    with pytest.raises(RuntimeError):
        broker.cancel(broker.book, no, "0")
    [request_id] = broker.unknown
    assert broker.cancel(broker.book, no, "0").status is CancelStatus.REFUSED
    monkeypatch.undo()
    report = broker.reconcile()  # no trace on the server: released
    assert report.resolved == [request_id] and broker.unknown == ()
    assert broker.book.orders[no].cancellable_qty == 10


def test_unknown_cancels_survive_a_restart_through_the_journal(
    broker: KiwoomBroker, server: SimServer
) -> None:
    no = place(broker)
    server.inject(Fault(FaultKind.CLOSE_AFTER, api_id="kt10003"))
    outcome = broker.cancel(broker.book, no, 4)
    assert outcome.status is CancelStatus.UNKNOWN
    restarted = KiwoomBroker(broker.client, OrderBook.replay(broker.book.events))
    assert restarted.unknown == (outcome.request.request_id,)  # type: ignore[union-attr]
    assert restarted.cancel(restarted.book, no, 7).status is CancelStatus.REFUSED
    assert restarted.reconcile().resolved == [outcome.request.request_id]  # type: ignore[union-attr]
    assert restarted.book.orders[no].cancelled_qty == 4
    assert len(kt10003_bodies(server)) == 1
    assert_book_matches_truth(restarted.book, server)


# -- secrets ---
def test_no_secret_in_any_log_record_repr_or_error(
    server: SimServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    with make_client(server, throttle_retries=0) as c:
        broker = KiwoomBroker(c, OrderBook(), unknown_grace=timedelta(0))
        no = place(broker)
        token = c.tokens.token().reveal()
        server.expire_tokens()
        broker.cancel(broker.book, no, 2)
        for kind in FAULTS:
            server.inject(Fault(kind, api_id="kt10003", delay=0.6))
            outcome = broker.cancel(broker.book, no, 1)
            if outcome.ticket is not None:
                seen += [repr(outcome), outcome.ticket.message]
            server.wait_idle()
            broker.reconcile()
        try:
            c.tokens.token = lambda: "forged"  # type: ignore[method-assign]
            c.open_orders()
        except TokenInvalid as exc:
            seen += [str(exc), repr(exc)]
        seen += [repr(c), repr(c.tokens), repr(c.transport), repr(broker), repr(server)]
    text = "\n".join(
        seen + [r.getMessage() for r in caplog.records] + [repr(r.args) for r in caplog.records]
    )
    assert caplog.records, "DEBUG logging produced nothing to check"
    for secret in (APPKEY, SECRET, token):
        assert secret not in text


def test_errors_keep_nothing_behind_them_that_holds_a_secret(server: SimServer) -> None:
    def chain(error: BaseException) -> list[BaseException]:
        found: list[BaseException] = []
        link: BaseException | None = error
        while link is not None:
            found.append(link)
            link = link.__cause__ or link.__context__
        return found

    with make_client(server) as c:
        c.open_orders()
        token = c.tokens.token().reveal()
        for kind in (FaultKind.DELAY, FaultKind.CLOSE_AFTER):
            server.inject(Fault(kind, api_id="ka10075", delay=0.6))
            with pytest.raises(TransportError) as err:
                c.open_orders()
            # requests' own exception holds the request, with its Authorization header
            assert chain(err.value) == [err.value] and token not in repr(vars(err.value))
            server.wait_idle()
        server.expire_tokens()
        server.inject(Fault(FaultKind.CLOSE_AFTER, api_id="au10001"))  # holds the keys
        with pytest.raises(TokenUnavailable) as lost:
            c.open_orders()
        assert chain(lost.value) == [lost.value]
        assert SECRET not in repr(vars(lost.value)) and APPKEY not in str(lost.value)


def test_a_book_holds_one_trading_day_and_a_new_day_needs_a_new_book(server: SimServer) -> None:
    evening = datetime(2026, 12, 2, 23, 59, 50, tzinfo=KST)
    clock = StepClock(evening)
    with make_client(server) as c:
        broker = KiwoomBroker(c, OrderBook(), now=clock)
        old_book = broker.book
        no = place(broker)
        assert broker.trading_day == evening.date()
        clock.queue = [evening + timedelta(seconds=20)]  # past midnight in Korea
        before = sum(server.calls.values())
        with pytest.raises(StaleBook):
            broker.place(stk_cd="005930", side=Side.BUY, qty=1, price=FAR_BELOW)
        with pytest.raises(StaleBook):
            broker.cancel(old_book, no, "0")
        with pytest.raises(StaleBook):
            broker.modify(orig_ord_no=no, stk_cd="005930", qty=0, price=FAR_BELOW)
        assert sum(server.calls.values()) == before  # nothing was sent
        assert old_book.orders[no].pending_cancel_qty == 0  # nothing was reserved
        new_book = broker.start_day()
        assert new_book is broker.book and new_book is not old_book and len(new_book) == 0
        assert broker.trading_day == evening.date() + timedelta(days=1)
