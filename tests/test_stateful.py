"""The book driven by random interleavings, beside a small reference model.

A Hypothesis rule-based machine sends every kind of event (early, late, duplicated, conflicting,
for unknown orders), random cancels (ints, strings, ``"0"``, invalid ones), answers to them, and
replays; after every step it checks the invariants and that the book agrees with the model.

The model is written from ``docs/policies.md`` alone, as plainly as possible: it
shares no code with the engine. Answers to cancels always name their request (as the Kiwoom
adapter does); the oldest-first matching of unnamed answers is covered in test_scenarios.py.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from hypothesis import event as note
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from engine import (
    CancelRefused,
    InvalidEvent,
    OrderBook,
    OrderState,
    ParkingFull,
    Refusal,
    Side,
)
from engine import events as ev
from engine.testing.strategies import cancel_quantities, invalid_cancel_quantities

ORDER_NOS = ("0000001", "0000002", "0000003")
SUCCESSOR_NOS = ("0000101", "0000102", "0000103")
FILL_IDS = ("f1", "f2", "f3", "f4")


# -- the reference model ------------------------------------------------------------------------
@dataclass
class RefCancel:
    request_id: str
    qty: int  # 0 = all
    cancel_no: str = ""
    status: str = "pending"  # pending, confirmed, rejected
    accepted: int = -1  # what the acceptance reported (the machine always sends 0)
    answer: int = -1


@dataclass
class RefOrder:
    ord_no: str
    q: int
    price: int
    confirmed: bool = False
    f: int = 0
    c: int = 0
    m: int = 0
    leaves: int = 0
    rejected: bool = False
    fills: dict[str, tuple[int, int]] = field(default_factory=dict)
    cancels: list[RefCancel] = field(default_factory=list)
    successor: str | None = None
    origin: str | None = None
    reported: int = 0  # for a successor: the quantity its modify reported

    @property
    def state(self) -> OrderState:
        if self.rejected:
            return OrderState.REJECTED
        if self.leaves > 0:
            if self.f > 0:
                return OrderState.PARTIALLY_FILLED
            return OrderState.CONFIRMED if self.confirmed else OrderState.RECEIVED
        if self.f == self.q:
            return OrderState.FILLED
        if self.c > 0:
            return OrderState.CANCELLED
        return OrderState.REPLACED

    @property
    def terminal(self) -> bool:
        return self.leaves == 0

    @property
    def p(self) -> int:
        return sum(r.qty for r in self.cancels if r.status == "pending" and r.qty)

    @property
    def all_pending(self) -> bool:
        return any(r.status == "pending" and not r.qty for r in self.cancels)


class Refused(Exception):
    """The model says the event contradicts the book."""


class Full(Exception):
    """The model says the parking is full."""


MAX_PARKED = 20


class Model:
    def __init__(self) -> None:
        self.orders: dict[str, RefOrder] = {}
        self.parked: list[tuple[str, Any]] = []

    def decide(self, ord_no: str, qty: Any) -> tuple[bool, int, Refusal | None]:
        if type(qty) is str:
            n = int(qty) if qty.isascii() and qty.isdigit() and len(qty) <= 12 else -1
        elif type(qty) is int and qty < 10**12:
            n = qty
        else:
            n = -1
        if n < 0:
            return False, 0, Refusal.INVALID_QUANTITY
        o = self.orders.get(ord_no)
        if o is None:
            return False, 0, Refusal.UNKNOWN_ORDER
        terminal = {
            OrderState.FILLED: Refusal.FULLY_FILLED,
            OrderState.CANCELLED: Refusal.ALREADY_CANCELLED,
            OrderState.REJECTED: Refusal.REJECTED,
            OrderState.REPLACED: Refusal.REPLACED,
        }
        if o.state in terminal:
            return False, 0, terminal[o.state]
        if o.all_pending:
            return False, 0, Refusal.CANCEL_ALL_PENDING
        cancellable = o.leaves - o.p
        if cancellable <= 0:
            return False, 0, Refusal.NOTHING_CANCELLABLE
        if n == 0:
            return True, cancellable, None
        if n > cancellable:
            return False, 0, Refusal.EXCEEDS_CANCELLABLE
        return True, n, None

    # Each handler returns "ok", "noop" or "parked", or raises Refused; it mutates only on "ok".
    def apply(self, kind: str, key: str, args: dict[str, Any]) -> str:
        if kind == "fill" and args["qty"] <= 0:
            raise Refused  # malformed: refused before it could be parked
        if kind != "accept" and key not in self.orders:
            if kind == "request":
                raise Refused
            if len(self.parked) >= MAX_PARKED:
                raise Full
            self.parked.append((key, (kind, args)))
            return "parked"
        return getattr(self, "_" + kind)(key, **args)

    def _release(self, ord_no: str) -> None:
        mine = [item for k, item in self.parked if k == ord_no]
        self.parked = [(k, item) for k, item in self.parked if k != ord_no]
        for kind, args in mine:
            with contextlib.suppress(Refused):
                getattr(self, "_" + kind)(ord_no, **args)

    def _accept(self, ord_no: str, qty: int, price: int) -> str:
        known = self.orders.get(ord_no)
        if known is not None:
            if known.origin is None and (known.q, known.price) == (qty, price):
                return "noop"
            raise Refused
        self.orders[ord_no] = RefOrder(ord_no, qty, price, leaves=qty)
        self._release(ord_no)
        return "ok"

    def _confirm(self, ord_no: str) -> str:
        o = self.orders[ord_no]
        if o.terminal or o.confirmed:
            return "noop"
        o.confirmed = True
        return "ok"

    def _fill(self, ord_no: str, fill_id: str, qty: int, price: int) -> str:
        o = self.orders[ord_no]
        if qty <= 0:
            raise Refused
        if fill_id in o.fills:
            if o.fills[fill_id] == (qty, price):
                return "noop"
            raise Refused
        from_leaves = min(qty, o.leaves)
        from_cancelled = qty - from_leaves
        if o.rejected or from_cancelled > o.c:
            raise Refused
        o.fills[fill_id] = (qty, price)
        o.leaves -= from_leaves
        o.c -= from_cancelled
        o.f += qty
        return "ok"

    def _reject(self, ord_no: str) -> str:
        o = self.orders[ord_no]
        if o.rejected:
            return "noop"
        if o.f > 0 or o.terminal:
            raise Refused
        o.c += o.leaves
        o.leaves = 0
        o.rejected = True
        return "ok"

    def _expire(self, ord_no: str) -> str:
        o = self.orders[ord_no]
        if o.leaves == 0:
            return "noop"
        o.c += o.leaves
        o.leaves = 0
        return "ok"

    def _amend(self, orig: str, new: str, qty: int, price: int) -> str:
        o = self.orders[orig]
        known = self.orders.get(new)
        if known is not None:
            if (
                known.origin == orig
                and known.price == price
                and qty in (0, known.q, known.reported)
            ):
                return "noop"
            raise Refused
        from_leaves = o.leaves if qty == 0 else min(qty, o.leaves)
        from_cancelled = min(qty - from_leaves, o.c) if qty else 0
        moved = from_leaves + from_cancelled
        if moved == 0 or o.rejected:
            raise Refused
        o.m += moved
        o.leaves -= from_leaves
        o.c -= from_cancelled
        o.confirmed = True
        o.successor = new
        self.orders[new] = RefOrder(
            new, moved, price, confirmed=True, leaves=moved, origin=orig, reported=qty
        )
        self._release(new)
        return "ok"

    def _request(self, ord_no: str, request_id: str, qty: int) -> str:
        allowed, _, _ = self.decide(ord_no, qty)
        if not allowed:
            raise Refused
        self.orders[ord_no].cancels.append(RefCancel(request_id, qty))
        return "ok"

    def _find(self, o: RefOrder, request_id: str) -> RefCancel:
        for r in o.cancels:
            if r.request_id == request_id:
                return r
        raise Refused

    def _accepted(self, ord_no: str, cancel_no: str, request_id: str) -> str:
        r = self._find(self.orders[ord_no], request_id)
        if r.cancel_no == cancel_no:
            if r.accepted == 0:
                return "noop"
            r.accepted = 0  # its confirmation or rejection came first
            return "ok"
        if r.cancel_no:
            raise Refused
        r.cancel_no, r.accepted = cancel_no, 0
        return "ok"

    def _confirmed(self, ord_no: str, cancel_no: str, request_id: str, qty: int) -> str:
        o = self.orders[ord_no]
        r = self._find(o, request_id)
        if r.cancel_no and r.cancel_no != cancel_no:
            raise Refused
        if r.status == "confirmed":
            if r.answer == qty:
                return "noop"
            raise Refused
        if r.status == "rejected":
            raise Refused
        if qty == 0 or r.qty == 0:
            moved = o.leaves if qty == 0 or qty >= o.leaves else qty
        else:
            moved = min(qty, o.leaves)
        r.cancel_no, r.status, r.answer = cancel_no, "confirmed", qty
        o.c += moved
        o.leaves -= moved
        if moved:
            o.confirmed = True
        return "ok"

    def _rejected(self, ord_no: str, cancel_no: str, request_id: str) -> str:
        r = self._find(self.orders[ord_no], request_id)
        if r.cancel_no and r.cancel_no != cancel_no:
            raise Refused
        if r.status == "rejected":
            return "noop"
        if r.status == "confirmed":
            raise Refused
        r.cancel_no, r.status = cancel_no, "rejected"
        return "ok"


# -- the machine -------------------------------------------------------------------------------
def _event(kind: str, key: str, args: dict[str, Any]) -> Any:
    if kind == "accept":
        return ev.OrderAccepted(key, "005930", Side.BUY, args["qty"], args["price"])
    if kind == "confirm":
        return ev.OrderConfirmed(key)
    if kind == "fill":
        return ev.OrderFilled(key, args["fill_id"], args["qty"], args["price"])
    if kind == "reject":
        return ev.OrderRejected(key, code="RC4025")
    if kind == "expire":
        return ev.OrderExpired(key)
    if kind == "amend":
        return ev.OrderAmended(args["new"], key, args["qty"], args["price"])
    if kind == "accepted":
        return ev.CancelAccepted(args["cancel_no"], key, 0, request_id=args["request_id"])
    if kind == "confirmed":
        return ev.CancelConfirmed(
            args["cancel_no"], key, args["qty"], request_id=args["request_id"]
        )
    assert kind == "rejected"
    return ev.CancelRejected(
        key, code="RC4033", ord_no=args["cancel_no"], request_id=args["request_id"]
    )


class BookMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.book = OrderBook(max_parked=MAX_PARKED)
        self.model = Model()
        self.requests: list[tuple[str, str, int]] = []  # (ord_no, request_id, qty)
        self.sent: list[Any] = []  # events taken, for duplicate redelivery
        self.cancel_seq = 0

    def send(self, kind: str, key: str, **args: Any) -> None:
        event = _event(kind, key, args)
        before = self.book.snapshot()
        taken = len(self.book.events)
        try:
            expected = self.model.apply(kind, key, args)
        except Refused:
            expected = "refused"
        except Full:
            expected = "full"
        try:
            result = self.book.apply(event)
            outcome = "parked" if result is None else "taken"
        except InvalidEvent:
            outcome = "refused"
        except ParkingFull:
            outcome = "full"
        assert (outcome == "full") == (expected == "full")
        note(f"{kind}: {expected}")
        if expected == "refused":
            assert outcome == "refused", f"{event} should have been refused"
        else:
            assert outcome != "refused", f"{event} was refused, the model took it ({expected})"
        if outcome in ("refused", "full"):
            assert self.book.snapshot() == before, "a refused event changed the book"
            assert len(self.book.events) == taken
        elif expected == "noop":
            assert self.book.snapshot() == before, "a duplicate changed the book"
        else:
            self.sent.append(event)
        if expected == "parked":
            assert outcome == "parked"

    # -- orders ----------------------------------------------------------------------------
    @initialize(qtys=st.tuples(st.integers(1, 20), st.integers(1, 20)), confirm=st.booleans())
    def open_orders(self, qtys: tuple[int, int], confirm: bool) -> None:
        """Start with two known orders (the third number is left for early, parked events)."""
        for ord_no, qty in zip(ORDER_NOS, qtys, strict=False):
            self.send("accept", ord_no, qty=qty, price=70_000)
            if confirm:
                self.send("confirm", ord_no)

    @rule(
        ord_no=st.sampled_from(ORDER_NOS),
        qty=st.integers(1, 20),
        price=st.sampled_from([0, 70_000]),
    )
    def accept(self, ord_no: str, qty: int, price: int) -> None:
        self.send("accept", ord_no, qty=qty, price=price)

    @rule(ord_no=st.sampled_from(ORDER_NOS + SUCCESSOR_NOS))
    def confirm(self, ord_no: str) -> None:
        self.send("confirm", ord_no)

    @rule(
        ord_no=st.sampled_from(ORDER_NOS + SUCCESSOR_NOS),
        fill_id=st.sampled_from(FILL_IDS),
        qty=st.integers(-1, 12),
        price=st.sampled_from([70_000, 70_100]),
    )
    def fill(self, ord_no: str, fill_id: str, qty: int, price: int) -> None:
        self.send("fill", ord_no, fill_id=fill_id, qty=qty, price=price)

    @rule(ord_no=st.sampled_from(ORDER_NOS))
    def reject(self, ord_no: str) -> None:
        self.send("reject", ord_no)

    @rule(ord_no=st.sampled_from(ORDER_NOS + SUCCESSOR_NOS))
    def expire(self, ord_no: str) -> None:
        self.send("expire", ord_no)

    @rule(
        pair=st.sampled_from(list(zip(ORDER_NOS, SUCCESSOR_NOS, strict=True))),
        qty=st.integers(0, 12),
        price=st.sampled_from([69_900, 70_000]),
    )
    def amend(self, pair: tuple[str, str], qty: int, price: int) -> None:
        self.send("amend", pair[0], new=pair[1], qty=qty, price=price)

    # -- cancels ---------------------------------------------------------------------------
    @rule(
        ord_no=st.sampled_from(ORDER_NOS + SUCCESSOR_NOS),
        qty=st.one_of(
            cancel_quantities(max_qty=8),
            cancel_quantities(max_qty=14),
            st.sampled_from([0, "0"]),
            invalid_cancel_quantities(),
        ),
    )
    def request_cancel(self, ord_no: str, qty: Any) -> None:
        allowed, n, reason = self.model.decide(ord_no, qty)
        decision = self.book.decide_cancel(ord_no, qty)
        assert (decision.allowed, decision.qty, decision.reason) == (allowed, n, reason)
        before = self.book.snapshot()
        try:
            request = self.book.request_cancel(ord_no, qty)
        except CancelRefused as refused:
            note(f"request: refused {reason}")
            assert not allowed and refused.decision.reason is reason
            assert self.book.snapshot() == before
            return
        assert allowed
        note("request: ok")
        self.model.apply("request", ord_no, {"request_id": request.request_id, "qty": request.qty})
        self.requests.append((ord_no, request.request_id, request.qty))
        self.sent.append(self.book.events[-1])

    def _cancel_no(self, index: int) -> str:
        return f"C{index:06d}"

    @precondition(lambda self: self.requests)
    @rule(data=st.data())
    def cancel_accepted(self, data: st.DataObject) -> None:
        i = data.draw(st.integers(0, len(self.requests) - 1))
        ord_no, request_id, _ = self.requests[i]
        self.send("accepted", ord_no, cancel_no=self._cancel_no(i), request_id=request_id)

    @precondition(lambda self: self.requests)
    @rule(data=st.data(), qty=st.integers(0, 14))
    def cancel_confirmed(self, data: st.DataObject, qty: int) -> None:
        i = data.draw(st.integers(0, len(self.requests) - 1))
        ord_no, request_id, requested = self.requests[i]
        qty = data.draw(st.sampled_from([requested, qty]))
        self.send("confirmed", ord_no, cancel_no=self._cancel_no(i), request_id=request_id, qty=qty)

    @precondition(lambda self: self.requests)
    @rule(data=st.data())
    def cancel_rejected(self, data: st.DataObject) -> None:
        i = data.draw(st.integers(0, len(self.requests) - 1))
        ord_no, request_id, _ = self.requests[i]
        self.send("rejected", ord_no, cancel_no=self._cancel_no(i), request_id=request_id)

    # -- duplicates and replays ------------------------------------------------------------
    @precondition(lambda self: self.sent)
    @rule(data=st.data())
    def redeliver(self, data: st.DataObject) -> None:
        event = data.draw(st.sampled_from(self.sent))
        before = self.book.snapshot()
        taken = len(self.book.events)
        if isinstance(event, ev.CancelRequested) or event in self.book.parked:
            return  # our own request, or an event still waiting: not a broker redelivery
        # An event refused when it left the parking is refused again: unchanged either way.
        with contextlib.suppress(InvalidEvent):
            self.book.apply(event)
        assert self.book.snapshot() == before, f"redelivered {event} changed the book"
        assert len(self.book.events) == taken

    @rule()
    def replay(self) -> None:
        copy = OrderBook.replay(self.book.events, max_parked=MAX_PARKED)
        assert copy.snapshot() == self.book.snapshot()

    # -- invariants ------------------------------------------------------------------------
    def teardown(self) -> None:
        kinds = {a.kind for a in self.book.anomalies}
        for kind in sorted(kinds):
            note(f"anomaly {kind}")

    @invariant()
    def quantities_add_up(self) -> None:
        for o in self.book.orders.values():
            assert o.filled_qty + o.cancelled_qty + o.replaced_qty + o.leaves_qty == o.qty
            assert min(o.filled_qty, o.cancelled_qty, o.replaced_qty, o.leaves_qty) >= 0
            assert o.pending_cancel_qty >= 0
            assert o.is_terminal == (o.leaves_qty == 0)
            if o.state is OrderState.REJECTED:
                assert o.filled_qty == 0

    @invariant()
    def book_matches_model(self) -> None:
        assert set(self.book.orders) == set(self.model.orders)
        for no, ref in self.model.orders.items():
            o = self.book.get(no)
            got = (o.filled_qty, o.cancelled_qty, o.replaced_qty, o.leaves_qty, o.state)
            assert got == (ref.f, ref.c, ref.m, ref.leaves, ref.state), (o, ref)
            assert (o.pending_cancel_qty, o.cancel_all_pending) == (ref.p, ref.all_pending)
            assert o.successor == ref.successor
            notional = sum(q * p for q, p in ref.fills.values())
            assert o.fill_notional == notional
        assert len(self.book.parked) == len(self.model.parked)

    @invariant()
    def decisions_are_total(self) -> None:
        for no in (*ORDER_NOS, *SUCCESSOR_NOS):
            for qty in (0, "0", 1, "3", 25, -1):
                d = self.book.decide_cancel(no, qty)
                assert d.allowed == (d.reason is None)
                assert (d.qty > 0) == d.allowed
                if d.allowed:
                    o = self.book.get(no)
                    assert d.qty <= o.leaves_qty - o.pending_cancel_qty


# The stateful run is the main search for interleaving bugs: it gets 20x the profile's examples
# (ci: about a minute; HYPOTHESIS_PROFILE=deep: much longer).
TestBookStateful = BookMachine.TestCase
TestBookStateful.settings = settings(
    settings.default, max_examples=settings.default.max_examples * 20
)
