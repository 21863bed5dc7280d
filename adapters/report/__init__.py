"""A simulated (or live) trading day drawn as one self-contained HTML file.

A :class:`Day` is what the report draws: the engine's events, and what the events alone do not
hold. :class:`Recorder` attaches to a :class:`adapters.sim.Harness` (``run_session(on_start=
recorder.attach)``) and records the price path, every cancel the engine refused (with its
reason) and every race the harness counted (with its kind), each with its time. From an events
file alone (``simulate --events-out``, or a journal of a live session), :func:`day_from_events`
derives what can be derived by replaying the events through a fresh book: executions, cancel
requests, the exchange's rejections with their codes, and the races the events show; the
price path is then the executions' prices, and refusals (never sent, never events) are not
shown. :func:`write_report` draws a day with plotly (the ``[report]`` extra).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import attrs

from adapters.sim.harness import Harness, Race
from engine import AnomalyKind, OrderBook, OrderState
from engine import events as ev
from engine.frames import MissingExtra

__all__ = [
    "Day",
    "Mark",
    "Recorder",
    "day_from_events",
    "read_events",
    "require_plotly",
    "write_report",
]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

INSTALL_HINT: Final = (
    "the HTML report needs the [report] extra: pip install 'kiwoom-order-engine[report]'"
)

#: Rejection codes that mean "fills took the shares first" (as the harness counts them).
_TAKEN: Final = frozenset({"RC4033", "RC4042"})


def require_plotly() -> Any:
    """Import and return plotly, or raise :class:`MissingExtra` naming ``[report]``."""
    try:
        import plotly
    except ImportError:
        raise MissingExtra(INSTALL_HINT) from None
    return plotly


@attrs.frozen
class Mark:
    """Something that happened to an order at an instant: a refusal, a race."""

    ts: datetime
    ord_no: str
    kind: str
    detail: str = ""


@attrs.frozen
class Day:
    """What a report draws. ``prices`` maps a symbol to (time, price) points."""

    events: Sequence[ev.Event]
    prices: dict[str, list[tuple[datetime, int]]]
    refusals: list[Mark]
    races: list[Mark]
    summary: str = ""
    #: Where the day comes from: ``live`` (recorded while it ran) or ``events`` (derived).
    source: str = "live"
    #: What the report cannot show, said at the top.
    notes: tuple[str, ...] = ()


def read_events(path: str | Path) -> list[ev.Event]:
    """Read a JSON-lines events file; raise ValueError naming the line of a bad event."""
    events: list[ev.Event] = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                events.append(ev.from_dict(json.loads(line)))
            except (ValueError, TypeError) as exc:  # EventDecodeError is a ValueError
                raise ValueError(f"{path}, line {number}: {exc}") from None
    return events


class Recorder:
    """Records, during a harness run, what a report needs beyond the events.

    Prices are sampled once per ``every_ms`` of simulated time per symbol (and at every
    change when the interval is 0); refusals and races keep their order number and time.
    """

    def __init__(self, symbols: Sequence[str], *, every_ms: int = 5_000) -> None:
        self.symbols = tuple(symbols)
        self.every_ms = every_ms
        self.prices: dict[str, list[tuple[datetime, int]]] = {}
        self.refusals: list[Mark] = []
        self.races: list[Mark] = []
        self._next_ms = 0
        self._harness: Harness | None = None

    def attach(self, harness: Harness) -> None:
        """Start recording ``harness`` (before its first step)."""
        self._harness = harness
        harness.skip_idle = False  # prices are sampled on every step, idle or not
        exchange = harness.exchange
        deliver = exchange.sink
        assert deliver is not None  # the harness set it
        races = harness.races
        book = harness.book

        def recording_deliver(event: ev.Event) -> None:
            before = dict(races)
            late = len(book.anomalies)
            deliver(event)
            about = getattr(event, "orig_ord_no", "") or getattr(event, "ord_no", "")
            for kind, count in races.items():
                for _ in range(count - before.get(kind, 0)):
                    self.races.append(Mark(exchange.now, about, kind))
            for anomaly in book.anomalies[late:]:
                if anomaly.kind == AnomalyKind.LATE_FILL:
                    self.races.append(Mark(exchange.now, about, Race.LATE_FILL, anomaly.detail))

        exchange.sink = recording_deliver
        harness.broker = _RecordingBroker(harness, self)  # type: ignore[assignment]
        previous = harness.on_step

        def on_step(h: Harness) -> None:
            self._sample(h)
            if previous is not None:
                previous(h)

        harness.on_step = on_step

    def _sample(self, harness: Harness) -> None:
        now_ms = harness.exchange.now_ms
        if now_ms < self._next_ms:
            return
        self._next_ms = now_ms + self.every_ms
        now = harness.now
        for code in self.symbols:
            price = harness.last_price(code)
            if price is not None:
                self.prices.setdefault(code, []).append((now, price))

    def day(self, events: Sequence[ev.Event], *, summary: str = "") -> Day:
        """Return the recorded day with its ``events`` (the run's journal) and ``summary``."""
        if self._harness is not None:
            self._sample_last(self._harness)
        return Day(list(events), self.prices, self.refusals, self.races, summary, "live")

    def _sample_last(self, harness: Harness) -> None:
        self._next_ms = 0
        self._sample(harness)


class _RecordingBroker:
    """The harness's broker, noting each cancel the engine refused (nothing else changes)."""

    def __init__(self, harness: Harness, recorder: Recorder) -> None:
        self._inner = harness.broker
        self._harness = harness
        self._recorder = recorder

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def cancel(self, book: OrderBook, ord_no: str, qty: int | str = 0, **kwargs: Any) -> Any:
        outcome = self._inner.cancel(book, ord_no, qty, **kwargs)
        if outcome.request is None:
            reason = outcome.decision.reason
            name = reason.name if reason is not None else "?"
            detail = f"{name}: {reason.description}" if reason is not None else name
            self._recorder.refusals.append(Mark(self._harness.now, str(ord_no), name, detail))
        return outcome


# -- a day from events alone ------------------------------------------------------------------
def day_from_events(events: Iterable[ev.Event], *, summary: str = "") -> Day:
    """Derive a day from events alone (an ``--events-out`` file, a live session's journal).

    The events are replayed through a fresh book, which gives what the harness would have
    counted: a fill while a cancel was pending, an event before its order's 접수 (parked), a
    fill after a cancel took its shares (the book's LATE_FILL anomaly), and cancels that found
    fewer shares than allowed (confirmed short, or rejected RC4033/RC4042), named
    MODIFY_TOOK_SHARES when a modify of the order landed between the request and the answer.
    """
    taken = list(events)
    book = OrderBook()
    races: list[Mark] = []
    prices: dict[str, list[tuple[datetime, int]]] = {}
    symbol: dict[str, str] = {}
    allowed: dict[str, tuple[int, bool, int]] = {}  # request id -> (qty, all?, amends seen)
    amends: Counter[str] = Counter()
    for event in taken:
        cls = type(event)
        ts = event.ts
        order = None
        if cls is ev.OrderFilled:
            order = book.orders.get(event.ord_no)  # type: ignore[union-attr]
            if order is not None and (order.pending_cancel_qty or order.cancel_all_pending):
                races.append(_mark(ts, event.ord_no, Race.FILL_DURING_CANCEL))  # type: ignore[union-attr]
        elif cls is ev.CancelRequested:
            target = book.orders.get(event.orig_ord_no)  # type: ignore[union-attr]
            qty = event.qty  # type: ignore[union-attr]
            if target is not None:
                room = target.cancellable_qty
                allowed[event.request_id] = (  # type: ignore[union-attr]
                    qty or room,
                    qty == 0,
                    amends[event.orig_ord_no],  # type: ignore[union-attr]
                )
        elif cls is ev.OrderAmended:
            amends[event.orig_ord_no] += 1  # type: ignore[union-attr]
        elif cls in (ev.CancelConfirmed, ev.CancelRejected):
            kind = _settled(event, allowed, amends)  # type: ignore[arg-type]
            if kind is not None:
                races.append(_mark(ts, event.orig_ord_no, kind))  # type: ignore[union-attr]
        late = len(book.anomalies)
        applied = book.apply(event)
        if applied is None:
            about = getattr(event, "orig_ord_no", "") or getattr(event, "ord_no", "")
            races.append(_mark(ts, about, Race.EARLY_EVENT))
        for anomaly in book.anomalies[late:]:
            if anomaly.kind == AnomalyKind.LATE_FILL:
                races.append(_mark(ts, anomaly.ord_no, Race.LATE_FILL, anomaly.detail))
        if cls is ev.OrderAccepted:
            symbol[event.ord_no] = event.stk_cd  # type: ignore[union-attr]
        elif cls is ev.OrderAmended and event.orig_ord_no in symbol:  # type: ignore[union-attr]
            symbol[event.ord_no] = symbol[event.orig_ord_no]  # type: ignore[union-attr]
        elif cls is ev.OrderFilled and ts is not None:
            code = symbol.get(event.ord_no)  # type: ignore[union-attr]
            if code is not None:
                prices.setdefault(code, []).append((ts, event.price))  # type: ignore[union-attr]
    notes = (
        "Drawn from events alone: the price line joins the executions (market prices are not "
        "events).",
        "Cancels the engine refused are not shown: a refused cancel is never sent, so it is "
        "no event.",
        "Races are derived by replaying the events; a cancel that found fewer shares because "
        "of the strategy's own modify is named MODIFY_TOOK_SHARES only when the modify's "
        "amendment arrived before the cancel's answer.",
    )
    return Day(taken, prices, [], races, summary, "events", notes)


def _mark(ts: datetime | None, ord_no: str, kind: str, detail: str = "") -> Mark:
    return Mark(ts if ts is not None else datetime.min, ord_no, kind, detail)


def _settled(
    event: ev.CancelConfirmed | ev.CancelRejected,
    allowed: dict[str, tuple[int, bool, int]],
    amends: Counter[str],
) -> str | None:
    """Name the race a cancel's answer shows, as the harness does (None: no race)."""
    known = allowed.pop(event.request_id, None)
    if known is None:
        return None
    qty, cancel_all, amends_then = known
    if isinstance(event, ev.CancelConfirmed):
        if event.qty >= qty:
            return None
    elif event.code not in _TAKEN:
        return None
    if amends[event.orig_ord_no] > amends_then:
        return Race.MODIFY_TOOK_SHARES
    if isinstance(event, ev.CancelConfirmed):
        return Race.CANCEL_ALL_AFTER_FILL if cancel_all else Race.PARTIAL_CANCEL_SHRUNK
    return Race.CANCEL_ALL_TOO_LATE if cancel_all else Race.PARTIAL_CANCEL_TOO_LATE


def write_report(day: Day, path: str | Path, *, title: str = "") -> None:
    """Draw ``day`` into ``path`` (one HTML file, plotly embedded: it opens offline)."""
    require_plotly()
    from adapters.report.html import render

    Path(path).write_text(render(day, title=title), encoding="utf-8")


def summarise(day: Day) -> str:
    """Return a short text summary of a day derived from events (orders, states, cancels)."""
    book = OrderBook.replay(day.events)
    states = Counter(o.state for o in book.orders.values())
    kinds = Counter(type(e).__name__ for e in day.events)
    rejected = Counter(e.code for e in day.events if isinstance(e, ev.CancelRejected))
    races = Counter(m.kind for m in day.races)
    order = list(OrderState)
    by_state = sorted(states.items(), key=lambda item: order.index(item[0]))
    rejected_text = ", ".join(f"{c} {n:,}" for c, n in sorted(rejected.items())) or "none"
    races_text = ", ".join(f"{k} {n:,}" for k, n in sorted(races.items())) or "none"
    lines = [
        f"{len(day.events):,} events, {len(book):,} orders",
        "  " + ", ".join(f"{s.label} {s.name} {n:,}" for s, n in by_state),
        f"Cancels: {kinds['CancelRequested']:,} requested and sent, "
        f"{kinds['CancelConfirmed']:,} confirmed, rejected {rejected_text}",
        f"Races (derived from the events): {races_text}",
    ]
    return "\n".join(lines)
