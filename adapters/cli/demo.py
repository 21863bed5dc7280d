"""``order-engine demo``: the kt10003 examples of Kiwoom's API guide walked through the engine."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from typing import TextIO

from engine import CancelRefused, Order, OrderBook, Side
from engine import events as ev

NAMES = {"005930": "삼성전자", "000660": "SK하이닉스", "035420": "NAVER"}


def kt10003_body(orig_ord_no: str, stk_cd: str, exchange: str, cncl_qty: str) -> dict[str, str]:
    """Return the kt10003 request body exactly as Kiwoom's guide spells it (all strings)."""
    return {
        "dmst_stex_tp": exchange,
        "orig_ord_no": orig_ord_no,
        "stk_cd": stk_cd,
        "cncl_qty": cncl_qty,
    }


def _pad(text: str, width: int) -> str:
    """Pad ``text`` to ``width`` terminal columns (Hangul takes two columns)."""
    cols = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(width - cols, 0)


class _Printer:
    def __init__(self, out: TextIO) -> None:
        self.out = out

    def line(self, text: str = "") -> None:
        self.out.write(text + "\n")

    def header(self) -> None:
        self.line(
            f"   {_pad('step', 40)} {_pad('state', 28)}{'Q':>4}{'F':>4}{'C':>4}{'M':>4}{'L':>4}"
            f"{'P':>4}  cancel-all pending"
        )

    def row(self, step: str, order: Order) -> None:
        st = order.state
        self.line(
            f"   {_pad(step, 40)} {_pad(f'{st.value} {st.name}', 28)}{order.qty:>4}"
            f"{order.filled_qty:>4}{order.cancelled_qty:>4}{order.replaced_qty:>4}"
            f"{order.leaves_qty:>4}{order.pending_cancel_qty:>4}"
            f"  {'yes' if order.cancel_all_pending else ''}".rstrip()
        )


def _example(
    p: _Printer,
    title: str,
    *,
    ord_no: str,
    stk_cd: str,
    side: Side,
    price: int,
    cncl_qty: str,
    cancel_no: str,
    before: Callable[[OrderBook], list[tuple[str, ev.Event]]] | None = None,
    race: list[tuple[str, ev.Event]] | None = None,
    confirmed_qty: int = 0,
) -> bool:
    """Walk one order through the engine; return True when the outcome was as the engine said."""
    book = OrderBook()
    p.line(title)
    p.line(
        f"   order {ord_no}: {side.label} ({side.name}) 10 x {NAMES[stk_cd]} {stk_cd}"
        f" @ {price:,} KRW, KRX"
    )
    p.header()
    steps: list[tuple[str, ev.Event]] = [
        ("접수 OrderAccepted", ev.OrderAccepted(ord_no, stk_cd, side, 10, price)),
        ("확인 OrderConfirmed", ev.OrderConfirmed(ord_no)),
    ]
    for label, event in steps:
        p.row(label, _applied(book, event))
    for label, event in before(book) if before else []:
        p.row(label, _applied(book, event))
    decision = book.decide_cancel(ord_no, cncl_qty)
    p.line(f'   decide cancel cncl_qty "{cncl_qty}": {decision.describe()}')
    try:
        request = book.request_cancel(ord_no, cncl_qty)
    except CancelRefused as refused:
        p.line(f"   no kt10003 is sent: {refused}")
        p.line()
        return not decision.allowed
    body = kt10003_body(request.orig_ord_no, request.stk_cd, request.exchange, request.cncl_qty)
    p.line(f"   request {request.request_id} reserved; kt10003 body {json.dumps(body)}")
    p.row("(reserved, nothing moved yet)", book.get(ord_no))
    accepted = ev.CancelAccepted(cancel_no, ord_no, request.qty, request_id=request.request_id)
    p.row(f"CancelAccepted as {cancel_no}", _applied(book, accepted))
    for label, event in race or []:
        p.row(label, _applied(book, event))
    confirm = ev.CancelConfirmed(cancel_no, ord_no, confirmed_qty or request.qty)
    order = _applied(book, confirm)
    p.row(f"취소 확인 CancelConfirmed {confirmed_qty or cncl_qty}", order)
    again = book.decide_cancel(ord_no, "0")
    p.line(f'   afterwards, cancel "0": {again.describe()}')
    p.line()
    return order.filled_qty + order.cancelled_qty + order.leaves_qty + order.replaced_qty == 10


def _applied(book: OrderBook, event: ev.Event) -> Order:
    order = book.apply(event)
    assert order is not None  # the demo's events are never parked
    return order


def run_demo(out: TextIO) -> int:
    """Print the walk-through; return the exit status (0 when every step held)."""
    p = _Printer(out)
    p.line("order-engine demo: the kt10003 examples of Kiwoom's API guide through the engine")
    p.line("(Q ordered, F filled, C cancelled, M modified away, L open, P reserved by cancels)")
    p.line()
    results = [
        _example(
            p,
            '1. 전체 잔량 취소: cancel all that is left of 0000140 (cncl_qty "0")',
            ord_no="0000140",
            stk_cd="005930",
            side=Side.BUY,
            price=70_000,
            cncl_qty="0",
            cancel_no="0000141",
            before=lambda b: [
                ("체결 OrderFilled 3 @ 70,000", ev.OrderFilled("0000140", "1", 3, 70_000))
            ],
        ),
        _example(
            p,
            '2. 부분 취소: cancel 5 of the 10 shares of 0000140 (cncl_qty "5")',
            ord_no="0000140",
            stk_cd="005930",
            side=Side.BUY,
            price=70_000,
            cncl_qty="5",
            cancel_no="0000141",
        ),
        _example(
            p,
            '3. 매수 주문 취소: cancel the buy 0000141 of 000660 (cncl_qty "0"), a fill races it',
            ord_no="0000141",
            stk_cd="000660",
            side=Side.BUY,
            price=180_000,
            cncl_qty="0",
            cancel_no="0000143",
            race=[
                ("체결 OrderFilled 4 (beat the cancel)", ev.OrderFilled("0000141", "1", 4, 180_000))
            ],
            confirmed_qty=10,
        ),
        _example(
            p,
            '4. 매도 주문 취소: cancel the sell 0000142 of 035420 (cncl_qty "0")',
            ord_no="0000142",
            stk_cd="035420",
            side=Side.SELL,
            price=190_000,
            cncl_qty="0",
            cancel_no="0000144",
        ),
        _example(
            p,
            '5. refused: cancel 0000145 of 005930 after it was 전량체결 (cncl_qty "0")',
            ord_no="0000145",
            stk_cd="005930",
            side=Side.BUY,
            price=70_000,
            cncl_qty="0",
            cancel_no="0000146",
            before=lambda b: [
                ("체결 OrderFilled 6 @ 70,000", ev.OrderFilled("0000145", "1", 6, 70_000)),
                ("체결 OrderFilled 4 @ 69,900", ev.OrderFilled("0000145", "2", 4, 69_900)),
            ],
        ),
    ]
    ok = all(results)
    p.line("every step kept F + C + M + L == Q" if ok else "AN INVARIANT FAILED")
    return 0 if ok else 1
