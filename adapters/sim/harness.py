"""A harness that runs a strategy against the simulated exchange through the engine.

Feed it market data step by step (:meth:`Harness.step`); at each step the exchange matches the
bar, the facts due by then reach the engine, and the strategy reacts: it places orders and asks
for cancels through the engine's decision (:meth:`Harness.cancel`). :meth:`Harness.finish` ends
the session and compares the engine's view of every order with the exchange's truth
(:func:`compare`); a :class:`Report` says what happened and lists every difference.

Backtesters that drive their own loop (backtrader, ...) use the same three calls: ``step``,
``place``/``cancel``, ``finish``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, ClassVar

import attrs

from adapters.broker import CancelOutcome, Ticket, TicketStatus
from adapters.sim.broker import SimBroker
from adapters.sim.exchange import SimError, SimExchange, TruthOrder
from adapters.sim.market import Bar, _CheckedStep, _Walk
from engine import (
    AnomalyKind,
    CancelDecision,
    ModifyRefused,
    Order,
    OrderBook,
    OrderState,
    Side,
)
from engine import events as ev

__all__ = ["Harness", "Mismatch", "Race", "Report", "Strategy", "check_invariants", "compare"]


_FILLED, _CANCEL_CONFIRMED, _CANCEL_REJECTED = ev.OrderFilled, ev.CancelConfirmed, ev.CancelRejected

#: The fewest idle steps worth looking for a way past: shorter runs are cheaper stepped through.
_WORTH_SKIPPING = 4
_NO_LIMIT = 1 << 62

#: Rejection codes that mean "something took the shares first" (not "the market is closed").
_TAKEN = frozenset({"RC4033", "RC4042"})


class Race:
    """The kinds of race the harness counts (the numbered scenarios of ``docs/policies.md``)."""

    #: A fill reached the engine while a cancel of that order was pending.
    FILL_DURING_CANCEL = "FILL_DURING_CANCEL"
    #: Scenario 9: a partial cancel was confirmed for fewer shares than asked (fills took them).
    PARTIAL_CANCEL_SHRUNK = "PARTIAL_CANCEL_SHRUNK"
    #: Scenario 10: a cancel-all came back RC4033, nothing left: fills took everything first.
    CANCEL_ALL_TOO_LATE = "CANCEL_ALL_TOO_LATE"
    #: Scenario 11: a cancel-all was confirmed for fewer shares than were open when allowed.
    CANCEL_ALL_AFTER_FILL = "CANCEL_ALL_AFTER_FILL"
    #: A partial cancel was rejected (RC4042/RC4033): fills took its shares after it was allowed.
    PARTIAL_CANCEL_TOO_LATE = "PARTIAL_CANCEL_TOO_LATE"
    #: The strategy's own modify moved shares the engine had allowed a cancel to take (the
    #: engine reserves nothing for a modify, so the cancel found less than it was allowed).
    MODIFY_TOOK_SHARES = "MODIFY_TOOK_SHARES"
    #: Scenario 13: a fill reached the engine after a cancel or expiry had taken its shares.
    LATE_FILL = "LATE_FILL"
    #: Scenario 17: an event reached the engine before its order's 접수 (it was parked).
    EARLY_EVENT = "EARLY_EVENT"


class Strategy:
    """Base class of a strategy run by the :class:`Harness`; override what you need.

    Every hook gets the harness, which is the strategy's whole world: ``harness.book`` (the
    engine's view), ``harness.now``, ``harness.last_price(code)``, ``harness.place(...)``,
    ``harness.modify(...)`` and ``harness.cancel(...)``.
    """

    def on_bars(self, harness: Harness, bars: Sequence[Bar]) -> None:
        """React to one step of market data (called after the engine got the step's facts)."""

    #: The event classes :meth:`on_event` wants (None: all of them). Naming them saves a call
    #: per event on long runs.
    event_types: ClassVar[frozenset[type] | None] = None

    def on_event(self, harness: Harness, event: ev.Event, order: Order | None) -> None:
        """React to one event the engine just took (``order`` None when it was parked)."""

    def on_answer(self, harness: Harness, ticket: Ticket) -> None:
        """React to the broker's answer to a request (a number or a rejection)."""

    def done(self, harness: Harness) -> bool:
        """Return True when the strategy wants no more market data (default: never)."""
        return False

    def idle_steps(self, harness: Harness) -> int:
        """Return how many of the next steps :meth:`on_bars` would do nothing in (default 0).

        Optional, for speed. On a walk (that of :func:`adapters.sim.run_session` or
        :func:`random_walk`, while ``harness.skip_idle``), :meth:`on_bars` is not called in the
        steps promised, even when facts reach the engine in them; the harness asks again after
        each step the strategy saw and whenever something reached the engine. A stretch of
        promised steps in which, besides, nothing is due at the exchange and no bar reaches a
        resting order is passed over at once. The session is the same as if every step had
        been run. The promise covers :meth:`done` too: it must not turn True in those steps
        unless something reached the engine (it is asked then). ``harness.steps`` counts every
        step.
        """
        return 0


@attrs.frozen
class Mismatch:
    """One difference between the engine's view of an order and the exchange's truth."""

    ord_no: str
    field: str
    engine: Any
    exchange: Any

    def __str__(self) -> str:
        return f"{self.ord_no}: {self.field} engine={self.engine!r} exchange={self.exchange!r}"


def compare(book: OrderBook, exchange: SimExchange) -> list[Mismatch]:
    """Return every difference between ``book`` and the exchange's truth (none when they agree).

    Compared per order: state, Q, F, C, M, L, the fills' notional, the modify chain, and that
    no cancel is still pending; orders only one side knows and events still parked count too.
    """
    return _Audit(book, exchange).mismatches


class _Audit:
    """One pass over the book: the comparison with the truth, the invariants, the totals."""

    def __init__(self, book: OrderBook, exchange: SimExchange) -> None:
        self.mismatches: list[Mismatch] = []
        self.violations: list[str] = []
        self.states: Counter[str] = Counter()
        self.shares = {"filled": 0, "cancelled": 0, "replaced": 0}
        out = self.mismatches
        truths = exchange.orders
        states: Counter[OrderState] = Counter()
        filled = cancelled = replaced = 0
        for no, order in book.orders.items():
            mine = _engine_view(order)
            state, _, f, c, m, _, _, _, _, _ = mine
            states[state] += 1
            filled += f
            cancelled += c
            replaced += m
            violation = _violation(no, order, mine)
            if violation is not None:
                self.violations.append(violation)
            truth = truths.get(no)
            if truth is None:
                out.append(Mismatch(no, "order", state.name, None))
                continue
            theirs = _truth_view(truth)
            if mine != theirs:
                out.extend(
                    Mismatch(no, name, _plain(a), _plain(b))
                    for name, a, b in zip(_FIELDS, mine, theirs, strict=True)
                    if a != b
                )
        self.states = Counter({s.name: n for s, n in states.items()})
        self.shares = {"filled": filled, "cancelled": cancelled, "replaced": replaced}
        orders = book.orders
        for no, truth in truths.items():
            if no not in orders:
                out.append(Mismatch(no, "order", None, truth.state.name))
        for event in book.parked:
            out.append(Mismatch(_about(event), "parked", type(event).__name__, None))


_FIELDS = (
    "state",
    "qty",
    "filled_qty",
    "cancelled_qty",
    "replaced_qty",
    "leaves_qty",
    "fill_notional",
    "successor",
    "pending_cancel_qty",
    "cancel_all_pending",
)


def _plain(value: Any) -> Any:
    return value.name if isinstance(value, OrderState) else value


def _engine_view(o: Order) -> tuple[Any, ...]:
    return (
        o.state,
        o.qty,
        o.filled_qty,
        o.cancelled_qty,
        o.replaced_qty,
        o.leaves_qty,
        o.fill_notional,
        o.successor,
        o.pending_cancel_qty,
        o.cancel_all_pending,
    )


def _truth_view(t: TruthOrder) -> tuple[Any, ...]:
    return (
        t.state,
        t.qty,
        t.filled,
        t.cancelled,
        t.replaced,
        t.leaves,
        t.notional,
        t.successor,
        t.inflight,
        t.inflight_all,
    )


def _about(event: ev.Event) -> str:
    return getattr(event, "orig_ord_no", "") or getattr(event, "ord_no", "")


def _violation(no: str, order: Order, view: tuple[Any, ...]) -> str | None:
    """Say how ``order`` (seen as ``view``) breaks F + C + M + L == Q or goes negative."""
    _, q, f, c, m, leaves, _, _, p, _ = view
    if f + c + m + leaves != q or min(f, c, m, leaves, p) < 0:
        return f"{no}: F+C+M+L={f + c + m + leaves} Q={q} {order!r}"
    return None


def check_invariants(book: OrderBook) -> list[str]:
    """Return every order that breaks F + C + M + L == Q or has a negative quantity."""
    found = (_violation(no, o, _engine_view(o)) for no, o in book.orders.items())
    return [v for v in found if v is not None]


@attrs.frozen
class Report:
    """What a simulated session did, and whether the engine's view matched the exchange."""

    orders: int
    events: int
    states: dict[str, int]
    shares: dict[str, int]
    placements: dict[str, Any]
    cancels: dict[str, Any]
    races: dict[str, int]
    anomalies: dict[str, int]
    mismatches: list[Mismatch]
    invariant_violations: list[str]
    #: The engine's book the report is about (for :meth:`to_frame`); not part of equality.
    book: OrderBook | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def ok(self) -> bool:
        """Return True when the engine matched the exchange and every invariant held."""
        return not self.mismatches and not self.invariant_violations

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready data."""
        return {
            "ok": self.ok,
            "orders": self.orders,
            "events": self.events,
            "states": self.states,
            "shares": self.shares,
            "placements": self.placements,
            "cancels": self.cancels,
            "races": self.races,
            "anomalies": self.anomalies,
            "mismatches": [attrs.asdict(m) for m in self.mismatches],
            "invariant_violations": self.invariant_violations,
        }

    def to_frame(self) -> Any:
        """Return a pandas DataFrame of the session's orders (``OrderBook.to_frame``).

        One row per order indexed by ``ord_no``: quantities, categorical ``state`` and
        ``side``, and (when the book kept its journal) ``accepted_at``/``updated_at`` in Korea
        time. Needs pandas (the ``[report]`` or ``[sweep]`` extra).
        """
        return self._book().to_frame()

    def events_frame(self) -> Any:
        """Return a pandas DataFrame of the events the engine took (empty without a journal)."""
        return self._book().events_frame()

    def _book(self) -> OrderBook:
        if self.book is None:
            raise ValueError("this report was made without its book: it has no orders to frame")
        return self.book


class Harness:
    """Runs ``strategy`` against ``exchange`` with ``book`` as the engine (see the module)."""

    __slots__ = (
        "_finished",
        "_modified_order",
        "_modify_requests",
        "_modifying",
        "_on_answer",
        "_on_bars",
        "_on_event",
        "_orders",
        "_requests",
        "_wanted",
        "book",
        "broker",
        "cancel_rejections",
        "cancels_confirmed",
        "cancels_requested",
        "cancels_sent",
        "events",
        "exchange",
        "modifies",
        "modify_refusals",
        "modify_rejections",
        "on_step",
        "orders",
        "place_rejections",
        "placed",
        "races",
        "refusals",
        "skip_idle",
        "steps",
        "strategy",
    )

    def __init__(
        self,
        exchange: SimExchange,
        strategy: Strategy,
        *,
        book: OrderBook | None = None,
        on_step: Callable[[Harness], object] | None = None,
    ) -> None:
        self.exchange = exchange
        self.strategy = strategy
        self.book = book if book is not None else OrderBook()
        self.broker = SimBroker(exchange)
        self.on_step = on_step
        #: Pass over idle steps (see :meth:`Strategy.idle_steps`); ``on_step`` is then called
        #: once after each run of skipped steps. Set False when ``on_step`` must see every step.
        self.skip_idle = True
        exchange.sink = self._deliver
        exchange.on_answer = self._answered
        self.events = 0
        self.steps = 0
        self.races: Counter[str] = Counter()
        self.refusals: Counter[str] = Counter()
        self.cancel_rejections: Counter[str] = Counter()
        self.place_rejections: Counter[str] = Counter()
        self.cancels_requested = 0
        self.cancels_sent = 0
        self.cancels_confirmed = 0
        self.placed = 0
        self.modifies = 0
        # request id -> (shares allowed when requested, cancel-all?)
        # request id -> (shares allowed, cancel-all?, the modifies of the order on their way)
        self._requests: dict[str, tuple[int, bool, tuple[Ticket, ...]]] = {}
        self.orders = self._orders = self.book.orders  # a live read-only view of the engine
        self._on_event = strategy.on_event
        wanted = strategy.event_types
        if type(strategy).on_event is Strategy.on_event:
            wanted = frozenset()  # the strategy does not listen
        self._wanted = wanted
        self._on_bars = strategy.on_bars
        listens = type(strategy).on_answer is not Strategy.on_answer
        self._on_answer = strategy.on_answer if listens else None
        # modifies on their way, per order (until its OrderAmended or a rejection arrives)
        self._modifying: dict[str, list[Ticket]] = {}
        self._modified_order: dict[str, str] = {}  # modify request id -> the order it modifies
        self._modify_requests: dict[str, str] = {}  # modify ticket id -> the book's request id
        self.modify_refusals: Counter[str] = Counter()  # modifies the engine refused, by reason
        self.modify_rejections: Counter[str] = Counter()  # modifies the exchange refused, by code
        self._finished: Report | None = None

    # -- what a strategy sees and does ----------------------------------------------------------
    @property
    def now(self) -> datetime:
        """Return the simulated time."""
        return self.exchange.now

    def last_price(self, stk_cd: str) -> int | None:
        """Return the last traded price of ``stk_cd`` (None before its first bar)."""
        return self.exchange.last_price(stk_cd)

    def place(
        self,
        stk_cd: str,
        side: Side,
        qty: int,
        price: int,
        *,
        trde_tp: str = "0",
        exchange: str = "KRX",
    ) -> Ticket:
        """Send a new order through the broker; its number arrives on the ticket."""
        ticket = self.broker.place(
            stk_cd=stk_cd, side=side, qty=qty, price=price, trde_tp=trde_tp, exchange=exchange
        )
        self.placed += 1
        return ticket

    def modify(self, ord_no: str, qty: int, price: int) -> Ticket:
        """Reserve, then send a modify of ``qty`` shares (0 = all remaining) of ``ord_no`` to
        ``price``.

        The engine decides first and reserves the shares (``request_modify``), so that no cancel
        can take what the modify is about to move; a refused modify is not sent and its ticket
        comes back REJECTED with the refusal's name as its code. The answer of a sent one
        arrives on the ticket once the venue has moved the shares (the new number then comes
        with its ``OrderAmended``) or found none to move (RC4033).
        """
        order = self.book.get(ord_no)
        if type(price) is not int or price <= 0:  # what the exchange refuses, before reserving
            raise SimError(f"a modify needs a positive int price, not {price!r}")
        self.exchange._check_target(ord_no, qty)
        try:
            request = self.book.request_modify(ord_no, qty, price, at=self._at(), ts=self.now)
        except ModifyRefused as refused:
            reason = refused.decision.reason
            name = reason.name if reason is not None else "REFUSED"
            self.modify_refusals[name] += 1
            return Ticket("modify", "", TicketStatus.REJECTED, "", name, str(refused))
        self.events += 1  # the engine's own ModifyRequested
        ticket = self.broker.modify(orig_ord_no=ord_no, stk_cd=order.stk_cd, qty=qty, price=price)
        self._modify_requests[ticket.request_id] = request.request_id
        self.modifies += 1
        self._modifying.setdefault(ord_no, []).append(ticket)
        self._modified_order[ticket.request_id] = ord_no
        return ticket

    def decide(self, ord_no: str, qty: int | str = 0) -> CancelDecision:
        """Return the engine's decision on a cancel now, without asking for it."""
        return self.book.decide_cancel(ord_no, qty, at=self._at())

    def cancel(self, ord_no: str, qty: int | str = 0) -> CancelOutcome:
        """Ask the engine for a cancel; send it only if allowed. Refusals carry their reason."""
        self.cancels_requested += 1
        outcome = self.broker.cancel(self.book, ord_no, qty, at=self._at())
        if outcome.request is None:
            reason = outcome.decision.reason
            self.refusals[reason.name if reason is not None else "?"] += 1
        else:
            self.cancels_sent += 1
            self.events += 1  # the engine's own CancelRequested
            self._requests[outcome.request.request_id] = (
                outcome.decision.qty,
                outcome.request.cancel_all,
                tuple(self._modifying.get(ord_no, ())),  # modifies on their way may take shares
            )
        return outcome

    def _at(self) -> datetime | None:
        return self.exchange.now if self.book.calendar is not None else None

    # -- driving the session ------------------------------------------------------------------
    def step(self, bars: Sequence[Bar]) -> None:
        """Run one step: advance to the bars' time, match them, deliver, let the strategy act."""
        if self._finished is not None:
            raise RuntimeError("the session is finished")
        if not bars:
            return
        exchange = self.exchange
        at = bars[0].at_ms
        if type(bars) is _CheckedStep and type(at) is int and at >= exchange._now:
            pass  # made by the walk itself: well formed, all stamped ``at``
        else:
            exchange.check_bars(bars, at)  # a malformed step changes nothing
        queue = exchange._queue
        if queue and queue[0][0] <= at:
            exchange.advance(at)
        else:
            exchange._now = at  # nothing due: only the clock moves
        exchange._match_bars(bars)
        if queue and queue[0][0] <= at:
            exchange.advance(at)  # facts of the bars that reach the engine with no delay
        self._on_bars(self, bars)
        if queue and queue[0][0] <= at:
            exchange.advance(at)  # what has no latency happens now, before the next step
        self.steps += 1
        if self.on_step is not None:
            self.on_step(self)

    def run(self, market: Iterable[Sequence[Bar]]) -> Report:
        """Step through ``market`` until it ends or the strategy is done; then :meth:`finish`.

        On a walk (:func:`random_walk`) with a strategy that declares idle steps, the steps in
        which nothing can happen are passed over (see :meth:`Strategy.idle_steps`).
        """
        if self.skip_idle and isinstance(market, _Walk):
            self._walk(market)
            return self.finish()
        step = self.step
        done = self.strategy.done
        for bars in market:
            step(bars)
            if done(self):
                break
        return self.finish()

    def _walk(self, walk: _Walk) -> None:
        """Run a walk's steps as :meth:`step` would, without making the bars nobody looks at.

        Each step shows the walk's prices directly (:meth:`SimExchange._show_walk`). When
        the strategy has promised that ``on_bars`` would do nothing in the step (its word is
        asked again after anything reached the engine), the step's bars are not made and
        ``on_bars`` is not called; ``done`` and ``on_step`` are then called only if something
        reached the engine in the step. A stretch of promised steps in which, besides, nothing
        is due at the exchange and no bar reaches a resting order is passed over at once.
        """
        if self._finished is not None:
            raise RuntimeError("the session is finished")
        strategy = self.strategy
        promises = type(strategy).idle_steps is not Strategy.idle_steps
        idle = strategy.idle_steps
        done = strategy.done
        on_bars = self._on_bars
        exchange = self.exchange
        queue = exchange._queue
        advance = exchange.advance
        show = exchange._show_walk
        take = walk.take
        step_ms = walk.step_ms
        volumes = walk.volumes
        quiet = 0  # how many of the coming steps ``on_bars`` would do nothing in ...
        ask = False  # ... asked after each step it saw and whenever something reached the engine
        while True:
            if quiet >= _WORTH_SKIPPING:
                # Not past the first step at or after the next thing due.
                count = -(-queue[0][0] // step_ms) - walk.position if queue else _NO_LIMIT
                if count >= _WORTH_SKIPPING:
                    before = walk.position
                    last = walk.skip(min(count, quiet), exchange._first_reach)
                    if last >= 0:
                        passed = walk.position - before
                        self.steps += passed
                        quiet -= passed
                        exchange._now = (walk.position - 1) * step_ms
                        show(walk.columns, last, volumes)  # reaches nothing: the last bars
                        if self.on_step is not None:
                            self.on_step(self)
                        if done(self):
                            return
            k = take()
            if k < 0:
                return
            at = (walk.position - 1) * step_ms
            news = False  # did anything reach the engine in this step?
            if queue and queue[0][0] <= at:
                advance(at)
                news = True
            elif at >= exchange._now:
                exchange._now = at  # nothing due: only the clock moves
            else:
                exchange.check_bars(walk.bars(k), at)  # raises: the clock is past the walk
            show(walk.columns, k, volumes)
            if queue and queue[0][0] <= at:
                advance(at)  # facts of the bars that reach the engine with no delay
                news = True
            if promises and (ask or news):
                quiet = idle(self)
                ask = False
            if quiet > 0:
                quiet -= 1  # on_bars would do nothing: no bars, no call
                self.steps += 1
                if not news:
                    continue  # nothing changed: done stays False (the strategy's promise)
            else:
                on_bars(self, walk.bars(k))
                if queue and queue[0][0] <= at:
                    advance(at)  # what has no latency happens now, before the next step
                self.steps += 1
                ask = True
            if self.on_step is not None:
                self.on_step(self)
            if done(self):
                return

    def finish(self) -> Report:
        """Close the session (open orders expire), deliver everything, compare with the truth."""
        if self._finished is not None:
            return self._finished
        exchange = self.exchange
        exchange.drain()
        exchange.close()
        exchange.drain()
        self._finished = self.report()
        return self._finished

    # -- deliveries ---------------------------------------------------------------------------
    def _deliver(self, event: ev.Event) -> None:
        self.events += 1
        cls = type(event)
        if cls is _FILLED:
            order = self._orders.get(event.ord_no)  # type: ignore[union-attr]
            if order is not None and (order.pending_cancel_qty or order.cancel_all_pending):
                self.races[Race.FILL_DURING_CANCEL] += 1
        elif cls is _CANCEL_CONFIRMED:
            self.cancels_confirmed += 1
            self._settled(event, True)  # type: ignore[arg-type]
        elif cls is _CANCEL_REJECTED:
            self.cancel_rejections[event.code] += 1  # type: ignore[union-attr]
            self._settled(event, False)  # type: ignore[arg-type]
        order = self.book.apply(event)
        if order is None:
            self.races[Race.EARLY_EVENT] += 1
        wanted = self._wanted
        if wanted is None or cls in wanted:
            self._on_event(self, event, order)

    def _settled(self, event: ev.CancelConfirmed | ev.CancelRejected, confirmed: bool) -> None:
        known = self._requests.pop(event.request_id, None)
        if known is None:
            return
        allowed, cancel_all, modifies = known
        if confirmed:
            if event.qty >= allowed:  # type: ignore[union-attr]
                return
        elif event.code not in _TAKEN:  # type: ignore[union-attr]
            return  # refused for another reason (the session closed...): no race
        if any(t.status is not TicketStatus.REJECTED for t in modifies):
            # A modify ahead of the cancel moved (or, unanswered yet, reserved) the shares:
            # perhaps with fills, but the modify is the one to see.
            kind = Race.MODIFY_TOOK_SHARES
        elif confirmed:
            kind = Race.CANCEL_ALL_AFTER_FILL if cancel_all else Race.PARTIAL_CANCEL_SHRUNK
        else:
            kind = Race.CANCEL_ALL_TOO_LATE if cancel_all else Race.PARTIAL_CANCEL_TOO_LATE
        self.races[kind] += 1

    def _modify_done(self, ticket: Ticket) -> None:
        """Forget a modify once answered (its ticket says whether it moved shares)."""
        ord_no = self._modified_order.pop(ticket.request_id, "")
        tickets = self._modifying.get(ord_no)
        if tickets is not None and ticket in tickets:
            tickets.remove(ticket)
            if not tickets:
                del self._modifying[ord_no]

    def _answered(self, ticket: Ticket) -> None:
        kind = ticket.kind
        if kind == "place":
            if ticket.status is TicketStatus.REJECTED:
                self.place_rejections[ticket.code] += 1
        elif kind == "modify":  # answered once the venue moved the shares, or found none
            orig = self._modified_order.get(ticket.request_id, "")
            self._modify_done(ticket)
            request_id = self._modify_requests.pop(ticket.request_id, "")
            if ticket.status is TicketStatus.REJECTED and request_id and orig:
                self.modify_rejections[ticket.code] += 1
                rejected = ev.ModifyRejected(
                    orig, ticket.code, ticket.message, request_id=request_id, ts=self.now
                )
                self.events += 1
                self.book.apply(rejected)  # releases the reservation; nothing moved
        if self._on_answer is not None:
            self._on_answer(self, ticket)

    # -- the report ---------------------------------------------------------------------------
    def report(self) -> Report:
        """Return the report as of now (:meth:`finish` gives the final one)."""
        book = self.book
        audit = _Audit(book, self.exchange)
        states = audit.states
        anomalies: Counter[str] = Counter(a.kind for a in book.anomalies)
        races = self.races.copy()
        if anomalies[AnomalyKind.LATE_FILL]:
            races[Race.LATE_FILL] = anomalies[AnomalyKind.LATE_FILL]
        return Report(
            orders=len(book),
            events=self.events,
            states={s.name: states[s.name] for s in OrderState if states[s.name]},
            shares=audit.shares,
            placements={
                "sent": self.placed,
                "modifies": self.modifies,
                "modifies_refused": dict(sorted(self.modify_refusals.items())),
                "modifies_rejected": dict(sorted(self.modify_rejections.items())),
                "rejected": dict(sorted(self.place_rejections.items())),
            },
            cancels={
                "requested": self.cancels_requested,
                "allowed": self.cancels_sent,
                "refused": dict(sorted(self.refusals.items())),
                "confirmed": self.cancels_confirmed,
                "rejected": dict(sorted(self.cancel_rejections.items())),
            },
            races=dict(sorted(races.items())),
            anomalies=dict(sorted(anomalies.items())),
            mismatches=audit.mismatches,
            invariant_violations=audit.violations,
            book=book,
        )
