"""Render a :class:`adapters.report.Day` as one HTML page with plotly embedded (offline).

The page: the summary at the top (and what it cannot show), then per symbol the price path,
orders placed (buy/sell at their price), executions, cancel requests (allowed / refused with the
reason / rejected by the exchange) and race marks (the kind on hover); then the orders by state
over the day, and a sample of order timelines with the time spent in each state.
"""

from __future__ import annotations

import bisect
import html
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from adapters.report import Day, Mark
from engine import OrderBook, OrderState
from engine import events as ev
from engine.sessions import KST

__all__ = ["render", "timelines"]

#: Orders drawn in the timeline sample (spread evenly over the day's orders).
SAMPLE: Final = 24

#: Points of the orders-by-state chart.
BUCKETS: Final = 200

_COLOURS: Final = {
    OrderState.RECEIVED: "#9e9e9e",
    OrderState.CONFIRMED: "#42a5f5",
    OrderState.PARTIALLY_FILLED: "#ffb300",
    OrderState.FILLED: "#2e7d32",
    OrderState.CANCELLED: "#c62828",
    OrderState.REPLACED: "#8e24aa",
    OrderState.REJECTED: "#424242",
}

Transition = tuple[datetime, OrderState]


def _local(ts: datetime) -> datetime:
    """Return ``ts`` as naive Korea time (what the charts' axes show)."""
    return ts.astimezone(KST).replace(tzinfo=None) if ts.tzinfo is not None else ts


def timelines(events: Sequence[ev.Event]) -> tuple[OrderBook, dict[str, list[Transition]]]:
    """Replay ``events``; return the book and every order's states with the time each began."""
    book = OrderBook(journal=False)
    seen: dict[str, list[Transition]] = {}
    for event in events:
        book.apply(event)
        ts = event.ts
        if ts is None:
            continue
        numbers = [getattr(event, "ord_no", ""), getattr(event, "orig_ord_no", "")]
        for no in numbers:
            order = book.orders.get(no) if no else None
            if order is None:
                continue
            states = seen.setdefault(no, [])
            if not states or states[-1][1] is not order.state:
                states.append((ts, order.state))
    return book, seen


class _Prices:
    """A symbol's price path, to place marks of orders without a price (market orders)."""

    def __init__(self, points: Sequence[tuple[datetime, int]]) -> None:
        self.times = [t for t, _ in points]
        self.values = [p for _, p in points]

    def at(self, ts: datetime) -> int | None:
        if not self.times:
            return None
        i = bisect.bisect_right(self.times, ts) - 1
        return self.values[max(i, 0)]


def render(day: Day, *, title: str = "") -> str:
    """Return the whole page (plotly.js embedded once, so it opens offline)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    book, history = timelines(day.events)
    symbols = sorted(set(day.prices) | {o.stk_cd for o in book.orders.values()})
    prices = {code: _Prices(day.prices.get(code, [])) for code in symbols}
    figure = make_subplots(
        rows=max(1, len(symbols)),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        subplot_titles=symbols or ["no orders"],
    )
    unplaced = 0
    for row, code in enumerate(symbols, 1):
        traces, missing = _symbol_traces(go, day, book, code, prices[code], row == 1)
        unplaced += missing
        for trace in traces:
            figure.add_trace(trace, row=row, col=1)
        values = prices[code].values
        if values:  # the price path's range: an order priced far away must not flatten it
            low, high = min(values), max(values)
            pad = max((high - low) * 0.15, high * 0.005)
            figure.update_yaxes(range=[low - pad, high + pad], row=row, col=1)
        figure.update_yaxes(title_text="KRW", row=row, col=1)
    figure.update_layout(
        height=max(420, 330 * len(symbols)),
        margin={"l": 60, "r": 10, "t": 60, "b": 40},
        legend={"x": 1.01, "y": 1, "xanchor": "left"},
        hovermode="closest",
        title={"text": "Per symbol: price, orders, executions, cancels, races", "x": 0},
    )
    states = _states_figure(go, history)
    sample, lines = _timeline_figure(go, history)
    parts = [
        figure.to_html(full_html=False, include_plotlyjs=True, div_id="symbols"),
        states.to_html(full_html=False, include_plotlyjs=False, div_id="states"),
        sample.to_html(full_html=False, include_plotlyjs=False, div_id="timelines"),
    ]
    notes = [
        "Each price axis spans the price path: orders priced far from it (outside the daily "
        "band, rejected) lie off the chart; double-click a chart to see everything.",
        *day.notes,
    ]
    if unplaced:
        notes.append(
            f"{unplaced:,} refused cancels named order numbers the book never knew: "
            "they have no symbol to be drawn on (they are counted in the summary)."
        )
    return _PAGE.format(
        title=html.escape(title or "order-engine: a trading day"),
        source=html.escape(
            "recorded while the day ran" if day.source == "live" else "derived from events"
        ),
        summary=html.escape(day.summary or "(no summary)"),
        notes="".join(f"<li>{html.escape(n)}</li>" for n in notes),
        symbols=parts[0],
        states=parts[1],
        timelines=parts[2],
        lines="".join(f"<li><code>{html.escape(line)}</code></li>" for line in lines),
        races=html.escape(_race_counts(day.races)),
    )


def _race_counts(races: Sequence[Mark]) -> str:
    counts = Counter(m.kind for m in races)
    return ", ".join(f"{k} {n:,}" for k, n in sorted(counts.items())) or "none"


def _symbol_traces(
    go: Any, day: Day, book: OrderBook, code: str, prices: _Prices, legend: bool
) -> tuple[list[Any], int]:
    """Return the traces of one symbol's chart, and how many refusals had no order to draw."""
    orders = book.orders

    def y_of(ord_no: str, ts: datetime) -> int | None:
        order = orders.get(ord_no)
        if order is not None and order.price:
            return order.price
        return prices.at(ts)

    traces: list[Any] = []
    group = {"legendgroup": "", "showlegend": legend}

    def scatter(
        name: str, points: Sequence[tuple[datetime, float | None, str]], **style: Any
    ) -> None:
        kept = [(t, y, text) for t, y, text in points if y is not None]
        traces.append(
            go.Scatter(
                x=[_local(t) for t, _, _ in kept],
                y=[y for _, y, _ in kept],
                text=[text for _, _, text in kept],
                name=name,
                hovertemplate="%{x|%H:%M:%S.%L} %{y:,} KRW<br>%{text}<extra>" + name + "</extra>",
                **{**group, "legendgroup": name},
                **style,
            )
        )

    path = list(zip(prices.times, prices.values, strict=True))
    traces.append(
        go.Scatter(
            x=[_local(t) for t, _ in path],
            y=[p for _, p in path],
            mode="lines",
            name="price" if day.source == "live" else "price (executions)",
            line={"color": "#607d8b", "width": 1},
            hovertemplate="%{x|%H:%M:%S} %{y:,} KRW<extra>price</extra>",
            legendgroup="price",
            showlegend=legend,
        )
    )
    buys: list[tuple[datetime, float | None, str]] = []
    sells: list[tuple[datetime, float | None, str]] = []
    modified: list[tuple[datetime, float | None, str]] = []
    fills: list[tuple[datetime, float | None, str]] = []
    sizes: list[int] = []
    allowed: list[tuple[datetime, float | None, str]] = []
    rejected: list[tuple[datetime, float | None, str]] = []
    mine = {no for no, o in orders.items() if o.stk_cd == code}
    for event in day.events:
        ts = event.ts
        if ts is None:
            continue
        if isinstance(event, ev.OrderAccepted) and event.stk_cd == code:
            kind = "market" if event.price == 0 else f"limit {event.price:,}"
            text = f"{event.ord_no} {event.side.name} {event.qty:,} {kind}"
            target = buys if event.side.name == "BUY" else sells
            target.append((ts, y_of(event.ord_no, ts), text))
        elif isinstance(event, ev.OrderAmended) and event.ord_no in mine:
            text = f"{event.orig_ord_no} -> {event.ord_no}: {event.qty:,} to {event.price:,}"
            modified.append((ts, event.price or prices.at(ts), text))
        elif isinstance(event, ev.OrderFilled) and event.ord_no in mine:
            fills.append((ts, event.price, f"{event.ord_no} {event.qty:,} @ {event.price:,}"))
            sizes.append(event.qty)
        elif isinstance(event, ev.CancelRequested) and event.orig_ord_no in mine:
            what = "all" if event.qty == 0 else f"{event.qty:,}"
            text = f"cancel {what} of {event.orig_ord_no} ({event.request_id})"
            allowed.append((ts, y_of(event.orig_ord_no, ts), text))
        elif isinstance(event, ev.CancelRejected) and event.orig_ord_no in mine:
            text = f"{event.code} {event.message} ({event.orig_ord_no})"
            rejected.append((ts, y_of(event.orig_ord_no, ts), text))
    refused = [
        (m.ts, y_of(m.ord_no, m.ts), f"{m.ord_no}: {m.detail or m.kind}")
        for m in day.refusals
        if m.ord_no in mine
    ]
    unplaced = sum(1 for m in day.refusals if m.ord_no not in orders) if legend else 0
    races = [
        (m.ts, y_of(m.ord_no, m.ts), f"{m.kind} ({m.ord_no})")
        for m in day.races
        if m.ord_no in mine
    ]
    scale = max(sizes, default=1)
    layers: list[tuple[str, Sequence[tuple[datetime, float | None, str]], dict[str, Any]]] = [
        ("buy placed", buys, {"symbol": "triangle-up", "color": "#1565c0", "size": 8}),
        ("sell placed", sells, {"symbol": "triangle-down", "color": "#ef6c00", "size": 8}),
        ("modified (정정)", modified, {"symbol": "diamond-open", "color": "#8e24aa", "size": 8}),
        (
            "execution",
            fills,
            {
                "symbol": "circle",
                "color": "#2e7d32",
                "opacity": 0.7,
                "size": [5 + 10 * (q / scale) ** 0.5 for q in sizes],
            },
        ),
        (
            "cancel allowed",
            allowed,
            {"symbol": "x-thin-open", "size": 9, "line": {"width": 2, "color": "#00897b"}},
        ),
        ("cancel refused (engine)", refused, {"symbol": "x", "color": "#d81b60", "size": 9}),
        (
            "cancel rejected (exchange)",
            rejected,
            {"symbol": "square-x-open", "color": "#6d4c41", "size": 10},
        ),
        (
            "race",
            races,
            {"symbol": "star", "color": "#fdd835", "size": 13, "line": {"width": 1}},
        ),
    ]
    for name, points, marker in layers:
        scatter(name, points, mode="markers", marker=marker)
    return traces, unplaced


def _states_figure(go: Any, history: dict[str, list[Transition]]) -> Any:
    """Return a stacked area chart: how many orders are in each state through the day."""
    times = [t for states in history.values() for t, _ in states]
    figure = go.Figure()
    if times:
        start, end = min(times), max(times)
        span = max(end - start, timedelta(seconds=1))
        grid = [start + span * i / BUCKETS for i in range(BUCKETS + 1)]
        counts = {s: [0] * len(grid) for s in OrderState}
        for states in history.values():
            starts = [t for t, _ in states]
            for i, at in enumerate(grid):
                j = bisect.bisect_right(starts, at) - 1
                if j >= 0:
                    counts[states[j][1]][i] += 1
        x = [_local(t) for t in grid]
        for state in OrderState:
            if any(counts[state]):
                figure.add_trace(
                    go.Scatter(
                        x=x,
                        y=counts[state],
                        name=f"{state.label} {state.name}",
                        stackgroup="states",
                        line={"color": _COLOURS[state], "width": 0.5},
                        hovertemplate="%{x|%H:%M:%S} %{y:,} orders<extra>"
                        + state.name
                        + "</extra>",
                    )
                )
    figure.update_layout(
        title={"text": "Orders by state over the day", "x": 0},
        height=340,
        margin={"l": 60, "r": 20, "t": 50, "b": 40},
        yaxis_title="orders",
    )
    return figure


def _sample(history: dict[str, list[Transition]]) -> list[str]:
    """Pick up to SAMPLE orders spread over the day, preferring ones that changed state most."""
    numbers = sorted(history)
    if len(numbers) <= SAMPLE:
        return numbers
    rich = sorted(numbers, key=lambda n: (-len(history[n]), n))[: SAMPLE // 2]
    step = len(numbers) / (SAMPLE - len(rich))
    spread = [numbers[int(i * step)] for i in range(SAMPLE - len(rich))]
    return sorted(set(rich) | set(spread))[:SAMPLE]


def _timeline_figure(go: Any, history: dict[str, list[Transition]]) -> tuple[Any, list[str]]:
    """Return a Gantt-like chart of sampled orders' states, and the same as text lines."""
    figure = go.Figure()
    lines: list[str] = []
    chosen = _sample(history)
    shown: set[OrderState] = set()
    finals: dict[OrderState, list[tuple[float, str]]] = {}
    for no in chosen:
        states = history[no]
        born = states[0][0]
        steps: list[str] = []
        for i, (t, state) in enumerate(states):
            end = states[i + 1][0] if i + 1 < len(states) else None
            if end is None:
                steps.append(f"{state.label} {_clock(t)} (final)")
                finals.setdefault(state, []).append(((t - born) / timedelta(seconds=1), no))
                continue
            ms = (end - t) / timedelta(milliseconds=1)
            steps.append(f"{state.label} {_clock(t)} ({_ms(ms)})")
            figure.add_trace(
                go.Bar(
                    x=[ms / 1000],
                    y=[no],
                    base=[(t - born) / timedelta(seconds=1)],
                    orientation="h",
                    marker={"color": _COLOURS[state]},
                    name=f"{state.label} {state.name}",
                    legendgroup=state.name,
                    showlegend=state not in shown,
                    hovertemplate=f"{no} {state.label} {state.name} from {_clock(t)}: "
                    f"{_ms(ms)}<extra></extra>",
                )
            )
            shown.add(state)
        lines.append(f"{no}: " + " -> ".join(steps))
    for state, points in finals.items():
        figure.add_trace(
            go.Scatter(
                x=[x for x, _ in points],
                y=[no for _, no in points],
                mode="markers",
                marker={
                    "symbol": "line-ns",
                    "size": 14,
                    "line": {"width": 3, "color": _COLOURS[state]},
                },
                name=f"{state.label} {state.name} (final)",
                hovertemplate="%{y} " + f"{state.label} {state.name}" + " at %{x:.3f} s"
                "<extra></extra>",
            )
        )
    figure.update_layout(
        title={"text": "A sample of order timelines (time in each state)", "x": 0},
        barmode="overlay",
        height=max(300, 22 * len(chosen) + 120),
        margin={"l": 80, "r": 20, "t": 50, "b": 40},
        xaxis={"title": "seconds since the order's 접수 (hover for the time in each state)"},
        yaxis={"type": "category", "autorange": "reversed"},
    )
    return figure, lines


def _clock(ts: datetime) -> str:
    return f"{_local(ts):%H:%M:%S.%f}"[:-3]


def _ms(ms: float) -> str:
    return f"{ms:,.0f} ms" if ms < 10_000 else f"{ms / 1000:,.1f} s"


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<script>
window.reportErrors = [];
window.addEventListener("error", function (e) {{
  window.reportErrors.push(String(e.message));
  document.documentElement.setAttribute("data-js-errors", String(window.reportErrors.length));
}});
</script>
<style>
body {{ font-family: system-ui, sans-serif; margin: 16px 24px; color: #212121; }}
pre {{ background: #f5f5f5; padding: 10px 14px; overflow-x: auto; font-size: 12px; }}
h1 {{ font-size: 20px; margin-bottom: 4px; }}
.source {{ color: #616161; margin-top: 0; }}
ul.lines code {{ font-size: 12px; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p class="source">Drawn from the day's events, {source}. Races: {races}.</p>
<pre id="summary">{summary}</pre>
<ul class="notes">{notes}</ul>
{symbols}
{states}
{timelines}
<h2>The sampled timelines as text</h2>
<ul class="lines">{lines}</ul>
<script>
window.addEventListener("load", function () {{
  var plots = document.querySelectorAll(".plotly-graph-div");
  var drawn = Array.prototype.every.call(plots, function (d) {{ return !!d._fullLayout; }});
  document.documentElement.setAttribute(
    "data-rendered", drawn && plots.length === 3 ? "ok" : "no");
}});
</script>
</body>
</html>
"""
