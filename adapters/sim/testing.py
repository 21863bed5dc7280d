"""Hypothesis strategies and a stateful kit for testing strategies against the simulated exchange.

Import explicitly (``from adapters.sim import testing as ss``); it needs ``hypothesis`` and
imports :mod:`adapters.sim`. Every factory takes keyword arguments, returns a ``SearchStrategy``
and draws the simplest cases first (flat markets, zero latency, few actions), so failures shrink
to short, readable cases.

- :func:`market_paths`: price paths on KRX ticks, with zero volumes, gaps and jumps.
- :func:`latency_profiles`: :class:`~adapters.sim.Latency` values, zero first.
- :func:`action_sequences` (and :func:`actions`, :func:`places`, :func:`cancels`,
  :func:`modifies`): scripts of small frozen actions, played by :class:`ScriptedStrategy`.
- :func:`run_strategy` and :func:`assert_engine_matches_exchange`: run any
  :class:`~adapters.sim.Strategy` over a drawn market and check the engine against the truth.
- :class:`SimulationMachine`: a ``RuleBasedStateMachine`` to subclass with your own strategy
  and invariants.

Actions never name order numbers (a script cannot know them in advance): ``order=k`` means the
k-th order numbered so far, counted modulo how many there are.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import ClassVar, Final, Literal, TypeVar

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from hypothesis.strategies import SearchStrategy

from adapters.broker import Ticket, TicketStatus
from adapters.sim import (
    DEFAULT_START,
    START_PRICES,
    Bar,
    Delay,
    Harness,
    Latency,
    Report,
    SimExchange,
    Strategy,
    check_invariants,
    compare,
    round_to_tick,
    tick_size,
)
from engine import OrderBook, SessionCalendar, Side

__all__ = [
    "BOUNDARY_PRICES",
    "INVALID_QTYS",
    "MAX_PRICE",
    "ORDER_KINDS",
    "Action",
    "Cancel",
    "CancelUnknown",
    "Modify",
    "OrderKind",
    "Place",
    "Player",
    "ScriptedStrategy",
    "SimulationMachine",
    "Wait",
    "action_sequences",
    "actions",
    "assert_engine_matches_exchange",
    "cancels",
    "delays",
    "latency_profiles",
    "market_paths",
    "modifies",
    "places",
    "run_strategy",
    "seeds",
    "ticks_away",
    "unknown_cancels",
]

#: The highest price a drawn path reaches (a valid KRX tick).
MAX_PRICE: Final = 10_000_000

#: Prices on either side of each KRX tick-size boundary, and the lowest price.
BOUNDARY_PRICES: Final = (
    1,
    1_999,
    2_000,
    4_995,
    5_000,
    19_990,
    20_000,
    49_950,
    50_000,
    199_900,
    200_000,
    499_500,
    500_000,
)

_T = TypeVar("_T")

OrderKind = Literal["limit", "market", "ioc", "fok", "market_ioc", "market_fok"]

#: Each order kind's ``trde_tp`` code at Kiwoom (simplest first).
ORDER_KINDS: Final[dict[str, str]] = {
    "limit": "0",
    "market": "3",
    "ioc": "10",
    "fok": "20",
    "market_ioc": "13",
    "market_fok": "23",
}

#: Cancel quantities the engine must refuse with INVALID_QUANTITY.
INVALID_QTYS: Final[tuple[int | str, ...]] = ("-1", "2.5", "x", "", "+5", -1)


# -- prices -------------------------------------------------------------------------------------
def ticks_away(price: int, ticks: int) -> int:
    """Return ``price`` moved ``ticks`` KRX ticks up (positive) or down, kept from 1 to the cap.

    Each step uses the tick size of the band it moves in, so a valid price stays valid
    (49,950 + 1 tick = 50,000; 50,000 - 1 tick = 49,950).
    """
    for _ in range(abs(ticks)):
        if ticks > 0:
            price = min(MAX_PRICE, price + tick_size(price))
        elif price > 1:
            price -= tick_size(price - 1)
    return price


_Change = tuple[int, int]  # (ticks, percent): a move in ticks, or a jump in percent


def _shift(price: int, change: _Change) -> int:
    ticks, percent = change
    if percent:
        price = round_to_tick(min(MAX_PRICE, max(1, price + price * percent // 100)))
    return ticks_away(price, ticks)


def _changes(max_ticks: int, max_jump_pct: int) -> SearchStrategy[_Change]:
    """Moves of a few ticks; one in twenty a jump of up to ``max_jump_pct`` percent."""
    moves = st.integers(-max_ticks, max_ticks).map(lambda t: (t, 0))
    if max_jump_pct <= 0:
        return moves
    jumps = st.integers(-max_jump_pct, max_jump_pct).map(lambda p: (0, p))
    return _weighted((19, moves), (1, jumps))


def _weighted(*choices: tuple[int, SearchStrategy[_T]]) -> SearchStrategy[_T]:
    """Draw from one of ``choices`` (weight, strategy); shrinks towards the first one."""
    slots = st.sampled_from([i for i, (weight, _) in enumerate(choices) for _ in range(weight)])
    strategies = [strategy for _, strategy in choices]

    @st.composite
    def one(draw: st.DrawFn) -> _T:
        return draw(strategies[draw(slots)])

    return one()


@functools.cache
def _step_moves(count: int, max_volume: int, max_jump_pct: int) -> SearchStrategy[list[_BarMove]]:
    move = _bar_moves(max_volume=max_volume, max_jump_pct=max_jump_pct)
    return st.lists(move, min_size=count, max_size=count)


@attrs.frozen
class _BarMove:
    """How one bar moves from the last close: gap to the open, body, wicks, volume."""

    gap: _Change
    body: _Change
    up: int
    down: int
    volume: int

    def bar(self, stk_cd: str, at_ms: int, last_close: int, *, first: bool = False) -> Bar:
        open_ = last_close if first else _shift(last_close, self.gap)
        close = _shift(open_, self.body)
        high = ticks_away(max(open_, close), self.up)
        low = ticks_away(min(open_, close), -self.down)
        return Bar(stk_cd, at_ms, open_, high, low, close, self.volume)


@functools.cache
def _bar_moves(*, max_volume: int, max_jump_pct: int) -> SearchStrategy[_BarMove]:
    return st.builds(
        _BarMove,
        gap=st.one_of(st.just((0, 0)), _changes(3, max_jump_pct)),
        body=_changes(2, max_jump_pct),
        up=st.integers(0, 2),
        down=st.integers(0, 2),
        volume=st.one_of(st.integers(0, max_volume), st.just(0)),
    )


@functools.cache
def _start_prices(stk_cd: str) -> SearchStrategy[int]:
    return st.one_of(
        st.just(START_PRICES.get(stk_cd, 50_000)),
        st.sampled_from(BOUNDARY_PRICES),
        st.integers(1, 2_000_000).map(round_to_tick),
    )


@st.composite
def market_paths(
    draw: st.DrawFn,
    *,
    symbols: Sequence[str] = ("005930",),
    min_steps: int = 1,
    max_steps: int = 30,
    step_ms: int | SearchStrategy[int] = 200,
    max_volume: int = 50,
    max_jump_pct: int = 30,
    start_prices: Mapping[str, int] | None = None,
) -> list[list[Bar]]:
    """Market data for :meth:`Harness.step`: a list of steps, each one bar per symbol.

    The bars of a step share their time (the first step at 0 ms, then ``step_ms`` later each,
    or a drawn gap when ``step_ms`` is a strategy of positive ints). Every price is a valid KRX
    tick (:func:`~adapters.sim.tick_size`); from the last close a bar can gap, move a few ticks
    or jump by up to ``max_jump_pct`` percent (0: no jumps), and trade 0 to ``max_volume``
    shares. The first bars open at the start prices: the symbol's usual price, a tick-band
    boundary, or any price (pass ``start_prices`` to fix them). Shrinks towards short, flat
    paths with no volume.
    """
    if not symbols:
        raise ValueError("at least one symbol is needed")
    if min_steps < 0 or max_steps < min_steps:
        raise ValueError(f"need 0 <= min_steps <= max_steps, not {min_steps}, {max_steps}")
    closes = {
        s: start_prices[s] if start_prices is not None else draw(_start_prices(s)) for s in symbols
    }
    for s, price in closes.items():
        if not 0 < price <= MAX_PRICE or price % tick_size(price):
            raise ValueError(f"start price of {s} must be a valid KRX tick, not {price!r}")
    gaps = step_ms if isinstance(step_ms, SearchStrategy) else st.just(step_ms)
    move = _bar_moves(max_volume=max_volume, max_jump_pct=max_jump_pct)
    steps = draw(
        st.lists(
            st.tuples(gaps, st.lists(move, min_size=len(symbols), max_size=len(symbols))),
            min_size=min_steps,
            max_size=max_steps,
        )
    )
    path: list[list[Bar]] = []
    at = 0
    for i, (gap, moves) in enumerate(steps):
        if i:
            if type(gap) is not int or gap <= 0:
                raise ValueError(f"step_ms must give positive ints, not {gap!r}")
            at += gap
        bars = [m.bar(s, at, closes[s], first=not i) for s, m in zip(symbols, moves, strict=True)]
        closes.update((b.stk_cd, b.close) for b in bars)
        path.append(bars)
    return path


# -- latency and seeds --------------------------------------------------------------------------
def delays(*, max_ms: int = 300) -> SearchStrategy[Delay]:
    """Delays: fixed (0 to ``max_ms``, shrinking to none) or a range within it."""
    ms = st.integers(0, max_ms)
    return st.one_of(ms.map(Delay), st.tuples(ms, ms).map(lambda t: Delay(min(t), max(t))))


def latency_profiles(*, max_ms: int = 300, reorder: bool | None = None) -> SearchStrategy[Latency]:
    """Latencies: zero first, then one delay on every channel, then each channel its own.

    ``reorder`` True or False fixes whether deliveries may overtake each other; None draws it.
    """
    reorders = st.booleans() if reorder is None else st.just(reorder)
    delay = delays(max_ms=max_ms)
    return st.one_of(
        st.just(Latency(reorder=bool(reorder))),
        st.builds(Latency.uniform, delay, reorder=reorders),
        st.builds(Latency, delay, delay, delay, reorders),
    )


def seeds() -> SearchStrategy[int]:
    """Seeds for the simulated exchange (its own ``random.Random``)."""
    return st.integers(0, 2**32 - 1)


# -- actions ------------------------------------------------------------------------------------
@attrs.frozen
class Place:
    """Place a new order of ``qty`` shares of the ``symbol``-th symbol of the step (modulo).

    ``offset`` is in ticks from the last price on the passive side (a buy below, a sell above);
    negative crosses. Market kinds ignore it (price 0).
    """

    side: Side = Side.BUY
    qty: int = 1
    offset: int = 0
    kind: OrderKind = "limit"
    symbol: int = 0


@attrs.frozen
class Cancel:
    """Ask the engine for a cancel of ``qty`` of the ``order``-th numbered order (modulo).

    ``qty`` goes to the engine as is: ``"0"``/``0`` is all, an int or a digit string a part
    (refused when it exceeds what is cancellable), anything else an invalid quantity.
    """

    order: int = 0
    qty: int | str = "0"


@attrs.frozen
class CancelUnknown:
    """Ask the engine for a cancel of a number it cannot know (refused: UNKNOWN_ORDER)."""

    ord_no: str = "9999999"


@attrs.frozen
class Modify:
    """Modify ``qty`` shares (0 = all open) of the ``order``-th numbered order (modulo).

    The new price is ``offset`` ticks from the last price on the passive side.
    """

    order: int = 0
    qty: int = 0
    offset: int = 0


@attrs.frozen
class Wait:
    """Do nothing this step."""


Action = Place | Cancel | CancelUnknown | Modify | Wait


def places(*, max_qty: int = 20, max_offset: int = 5) -> SearchStrategy[Place]:
    """New orders: 1 to ``max_qty`` shares, -2 to ``max_offset`` ticks, resting limits first."""
    return st.builds(
        Place,
        side=st.sampled_from(Side),
        qty=st.integers(1, max_qty),
        offset=st.one_of(st.integers(1, max_offset), st.integers(-2, 0)),
        kind=st.one_of(st.just("limit"), st.sampled_from(list(ORDER_KINDS))),
        symbol=st.integers(0, 5),
    )


def cancels(*, max_qty: int = 20, max_order: int = 9) -> SearchStrategy[Cancel]:
    """Cancels of the k-th order: all (``"0"``, ``0``), partial (int or text), invalid."""
    n = st.integers(1, max_qty)
    qty: SearchStrategy[int | str] = st.one_of(
        st.just("0"), st.just(0), n, n.map(str), st.sampled_from(INVALID_QTYS)
    )
    return st.builds(Cancel, order=st.integers(0, max_order), qty=qty)


def modifies(*, max_qty: int = 20, max_order: int = 9) -> SearchStrategy[Modify]:
    """Modifies of the k-th order: all or part of it, to a price near the last one."""
    return st.builds(
        Modify,
        order=st.integers(0, max_order),
        qty=st.one_of(st.just(0), st.integers(1, max_qty)),
        offset=st.integers(-2, 5),
    )


def unknown_cancels() -> SearchStrategy[CancelUnknown]:
    """Cancels of numbers that no order has (9xxxxxx): the engine must refuse them."""
    return st.builds(CancelUnknown, ord_no=st.integers(9_000_000, 9_999_999).map(str))


def actions(*, max_qty: int = 20) -> SearchStrategy[Action]:
    """One action of any kind: 40% placements, 30% cancels, the rest modifies, waits and
    cancels of unknown numbers (so that cancels and modifies have orders to act on)."""
    return _weighted(
        (4, places(max_qty=max_qty)),
        (3, cancels(max_qty=max_qty)),
        (1, modifies(max_qty=max_qty)),
        (1, st.just(Wait())),
        (1, unknown_cancels()),
    )


def action_sequences(
    *, min_size: int = 0, max_size: int = 20, max_qty: int = 20
) -> SearchStrategy[list[Action]]:
    """Scripts for :class:`ScriptedStrategy`: lists of :func:`actions`, shrinking to short ones."""
    return st.lists(actions(max_qty=max_qty), min_size=min_size, max_size=max_size)


# -- playing actions ----------------------------------------------------------------------------
class Player:
    """Plays actions on a harness and remembers its requests, to resolve "the k-th order".

    The k-th order of an action is the k-th number the broker gave to this player's placements
    and modifies (in the order they were sent), modulo how many there are so far.
    """

    def __init__(self) -> None:
        self.tickets: list[Ticket] = []

    def numbered(self) -> list[str]:
        """Return the numbers the broker gave to this player's requests, in sending order."""
        return [t.ord_no for t in self.tickets if t.status is TicketStatus.ACCEPTED]

    def play(self, harness: Harness, action: Action, symbols: Sequence[str]) -> str:
        """Play ``action`` on ``harness`` now; return what happened, in a few words.

        ``symbols`` are the codes a :class:`Place` chooses from (by index, modulo). Outcomes:
        ``"waited"``, ``"placed"``, ``"modify sent"``, ``"modify refused REASON"`` (the engine
        refused it: its shares were not free), ``"cancel sent"``, ``"refused REASON"``
        (the engine refused the cancel; nothing was sent) or ``"skipped: ..."`` when there is
        nothing to act on yet.
        """
        if isinstance(action, Wait):
            return "waited"
        if isinstance(action, CancelUnknown):
            return _cancel(harness, action.ord_no, "0")
        if isinstance(action, Place):
            if not symbols:
                return "skipped: no symbol"
            stk_cd = symbols[action.symbol % len(symbols)]
            price = 0
            if not action.kind.startswith("market"):
                price = _passive(harness, stk_cd, action.side, action.offset)
            trde_tp = ORDER_KINDS[action.kind]
            self.tickets.append(
                harness.place(stk_cd, action.side, action.qty, price, trde_tp=trde_tp)
            )
            return "placed"
        numbered = self.numbered()
        if not numbered:
            return "skipped: no numbered order yet"
        ord_no = numbered[action.order % len(numbered)]
        if isinstance(action, Cancel):
            return _cancel(harness, ord_no, action.qty)
        order = harness.book.orders.get(ord_no)
        if order is None:
            return "skipped: the engine does not know the order yet"
        price = _passive(harness, order.stk_cd, order.side, action.offset)
        ticket = harness.modify(ord_no, action.qty, price)
        self.tickets.append(ticket)
        if ticket.status is TicketStatus.REJECTED and not ticket.request_id:
            return f"modify refused {ticket.code}"  # the engine's decision: nothing was sent
        return "modify sent"


def _cancel(harness: Harness, ord_no: str, qty: int | str) -> str:
    reason = harness.cancel(ord_no, qty).decision.reason
    return "cancel sent" if reason is None else f"refused {reason.name}"


def _passive(harness: Harness, stk_cd: str, side: Side, offset: int) -> int:
    last = harness.last_price(stk_cd) or START_PRICES.get(stk_cd, 50_000)
    return ticks_away(last, -offset if side is Side.BUY else offset)


class ScriptedStrategy(Strategy):
    """A :class:`~adapters.sim.Strategy` that plays ``actions``, one per market step.

    ``outcomes`` lists what each played action did (see :meth:`Player.play`); the market data
    decides how long the session lasts, so actions past its end are never played.
    """

    def __init__(self, actions: Iterable[Action]) -> None:
        self.actions = tuple(actions)
        self.player = Player()
        self.outcomes: list[str] = []

    def on_bars(self, harness: Harness, bars: Sequence[Bar]) -> None:
        """Play the next action, if any."""
        played = len(self.outcomes)
        if played < len(self.actions):
            symbols = [b.stk_cd for b in bars]
            self.outcomes.append(self.player.play(harness, self.actions[played], symbols))


# -- running and checking -----------------------------------------------------------------------
def run_strategy(
    strategy: Strategy,
    market: Iterable[Sequence[Bar]],
    latency: Latency | None = None,
    seed: int = 0,
    *,
    start: datetime = DEFAULT_START,
    sessions: SessionCalendar | None = None,
    book: OrderBook | None = None,
) -> tuple[Harness, Report]:
    """Run ``strategy`` over ``market`` on a fresh :class:`~adapters.sim.SimExchange`.

    The session ends when the market data ends or the strategy is done; open orders then
    expire, everything is delivered and the report compares the engine with the truth. The same
    arguments give the same events. ``book`` defaults to ``OrderBook(calendar=sessions)``.
    """
    exchange = SimExchange(seed=seed, start=start, latency=latency, sessions=sessions)
    if book is None:
        book = OrderBook(calendar=sessions)
    harness = Harness(exchange, strategy, book=book)
    return harness, harness.run(market)


def assert_engine_matches_exchange(report: Report, *, limit: int = 20) -> None:
    """Raise ``AssertionError`` listing the differences unless ``report.ok``.

    ``report.ok`` means: the engine's view of every order (state, quantities, fills' notional,
    modify chain, no pending cancel, nothing parked) equals the exchange's truth, and
    F + C + M + L == Q holds everywhere. At most ``limit`` differences are listed.
    """
    if report.ok:
        return
    problems = [str(m) for m in report.mismatches] + list(report.invariant_violations)
    shown = "\n  ".join(problems[:limit])
    more = f"\n  ... and {len(problems) - limit} more" if len(problems) > limit else ""
    raise AssertionError(
        f"the engine's view differs from the exchange's truth ({len(problems)}):\n  {shown}{more}"
    )


# -- the state machine --------------------------------------------------------------------------
_hand_actions: Final = _weighted(
    (4, places()), (4, cancels()), (2, modifies()), (1, unknown_cancels())
)


class SimulationMachine(RuleBasedStateMachine):
    """A rule-based machine that runs your strategy against the simulated exchange.

    Subclass it, override :meth:`make_strategy` (and :meth:`check`, :meth:`check_report` for
    your own invariants), and collect ``TestX = MyMachine.TestCase``. Each run opens a session
    with a drawn latency (:attr:`latencies`) and seed; then Hypothesis interleaves the rules:

    - ``step_market``: one to five steps of bars (one per symbol), each a few ticks or a jump
      from the last close, trading 0 to :attr:`max_volume` shares;
    - ``act``: a hand beside your strategy places, cancels (all, part, an invalid quantity, an
      unknown number) or modifies its own orders (set :attr:`manual` False to leave your
      strategy alone). Your strategy sees the hand's answers and events too: tell yours apart
      by the tickets ``harness.place`` returned;
    - ``settle``: deliver everything still on its way, then the engine must equal the truth.

    After every rule F + C + M + L == Q must hold and :meth:`check` is called; at the end the
    session closes and the report must be ok (:func:`assert_engine_matches_exchange`).
    """

    #: The symbols of the market (one bar each per step).
    symbols: ClassVar[tuple[str, ...]] = ("005930",)
    #: Milliseconds between two market steps.
    step_ms: ClassVar[int] = 200
    #: The latencies drawn for a run.
    latencies: ClassVar[SearchStrategy[Latency]] = latency_profiles()
    #: Whether the rules place, cancel and modify orders of their own besides the strategy.
    manual: ClassVar[bool] = True
    #: The most shares a bar trades, and the largest jump in percent.
    max_volume: ClassVar[int] = 50
    max_jump_pct: ClassVar[int] = 30
    #: Fixed start prices by symbol (default: drawn, as in :func:`market_paths`).
    start_prices: ClassVar[Mapping[str, int] | None] = None

    def __init__(self) -> None:
        super().__init__()
        self.harness: Harness | None = None
        self.player = Player()
        self._closes: dict[str, int] = {}
        self._next_at = 0

    # -- hooks --------------------------------------------------------------------------------
    def make_strategy(self) -> Strategy:
        """Return the strategy under test (default: one that does nothing)."""
        return Strategy()

    def make_book(self) -> OrderBook:
        """Return the engine's book for a run (default: a plain ``OrderBook()``)."""
        return OrderBook()

    def check(self, harness: Harness) -> None:
        """Check your own invariants after every rule (raise ``AssertionError`` to fail)."""

    def check_report(self, harness: Harness, report: Report) -> None:
        """Check your own invariants on the final report, after the session closed."""

    # -- the session --------------------------------------------------------------------------
    @property
    def _harness(self) -> Harness:
        if self.harness is None:
            raise RuntimeError("the session is not open yet")
        return self.harness

    @initialize(data=st.data(), seed=seeds())
    def open_session(self, data: st.DataObject, seed: int) -> None:
        """Open a session with a drawn latency, and feed the first bars."""
        latency = data.draw(self.latencies, label="latency")
        exchange = SimExchange(seed=seed, start=DEFAULT_START, latency=latency)
        self.harness = Harness(exchange, self.make_strategy(), book=self.make_book())
        fixed = self.start_prices or {}
        self._closes = {
            s: fixed[s] if s in fixed else data.draw(_start_prices(s), label=f"start {s}")
            for s in self.symbols
        }
        self._step(data)

    def _step(self, data: st.DataObject) -> None:
        moves = data.draw(
            _step_moves(len(self.symbols), self.max_volume, self.max_jump_pct), label="bars"
        )
        at = self._next_at
        first = self._harness.steps == 0
        bars = [
            m.bar(s, at, self._closes[s], first=first)
            for s, m in zip(self.symbols, moves, strict=True)
        ]
        self._harness.step(bars)
        self._closes.update((b.stk_cd, b.close) for b in bars)
        self._next_at = at + self.step_ms

    @rule(data=st.data(), steps=st.integers(1, 5))
    def step_market(self, data: st.DataObject, steps: int) -> None:
        """Feed one to five steps of market data (the strategy reacts to each)."""
        for _ in range(steps):
            self._step(data)

    @precondition(lambda self: self.manual)
    @rule(action=_hand_actions)
    def act(self, action: Action) -> None:
        """Place, cancel or modify by hand, beside the strategy (see :meth:`Player.play`)."""
        harness = self._harness
        outcome = self.player.play(harness, action, self.symbols)
        harness.exchange.advance(harness.exchange.now_ms)  # what has no latency happens now
        if isinstance(action, CancelUnknown):
            assert outcome == "refused UNKNOWN_ORDER", outcome

    @rule()
    def settle(self) -> None:
        """Deliver everything on its way; then the engine's view must equal the truth."""
        harness = self._harness
        harness.exchange.drain()
        mismatches = compare(harness.book, harness.exchange)
        assert not mismatches, "\n".join(str(m) for m in mismatches)
        self._next_at = max(self._next_at, harness.exchange.now_ms)

    @invariant()
    def quantities_add_up(self) -> None:
        """F + C + M + L == Q, nothing negative, for every order the engine knows."""
        if self.harness is not None:
            violations = check_invariants(self.harness.book)
            assert not violations, "\n".join(violations)

    @invariant()
    def user_invariants(self) -> None:
        """Your own invariants (:meth:`check`)."""
        if self.harness is not None:
            self.check(self.harness)

    def teardown(self) -> None:
        """Close the session; the engine must then equal the exchange's truth."""
        if self.harness is None:
            return
        report = self.harness.finish()
        assert_engine_matches_exchange(report)
        self.check_report(self.harness, report)
