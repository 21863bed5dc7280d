"""``order-engine simulate``: a seeded simulated trading session, summarised.

No network, no files unless ``--events-out`` asks for one. The exit status is 0 only when the
engine's view of every order matched the exchange's truth and every invariant held.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import time
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import IO, Any

from adapters.sim.harness import Harness, Report
from adapters.sim.latency import Delay, Latency
from adapters.sim.session import DAY_MS, DEFAULT_SYMBOLS, run_session
from engine import OrderState, Refusal
from engine import events as ev
from engine.sessions import KST, KoreaSessions

__all__ = ["add_arguments", "batch_gc", "run_simulate"]

_RACE_TEXT = {
    "FILL_DURING_CANCEL": "a fill arrived while a cancel was pending",
    "PARTIAL_CANCEL_SHRUNK": "a partial cancel took fewer shares than asked (scenario 9)",
    "CANCEL_ALL_TOO_LATE": "a cancel-all found nothing left: RC4033 (scenario 10)",
    "CANCEL_ALL_AFTER_FILL": "a cancel-all took what fills left over (scenario 11)",
    "PARTIAL_CANCEL_TOO_LATE": "a partial cancel was rejected: fills took its shares",
    "MODIFY_TOOK_SHARES": "the strategy's own modify took shares a cancel was allowed",
    "LATE_FILL": "a fill arrived after a cancel took its shares (scenario 13)",
    "EARLY_EVENT": "an event arrived before its order's 접수 and was parked (scenario 17)",
}

#: About how many bytes ``--events-out`` writes per order of the example strategy (measured:
#: 800 to 802 for 500 to 5,000 orders at the default options).
EVENT_BYTES_PER_ORDER = 800

#: From this expected size on, ``--events-out`` warns before the run (100 MB).
WARN_EVENTS_BYTES = 100_000_000

#: The summary's groups of races, each under a heading that is true of every kind in it.
_RACE_GROUPS = (
    (
        "fills beat a cancel (it took fewer shares than allowed, or none)",
        (
            "PARTIAL_CANCEL_SHRUNK",
            "PARTIAL_CANCEL_TOO_LATE",
            "CANCEL_ALL_AFTER_FILL",
            "CANCEL_ALL_TOO_LATE",
        ),
    ),
    ("a modify beat a cancel", ("MODIFY_TOOK_SHARES",)),
    ("fills and cancels in flight together", ("FILL_DURING_CANCEL",)),
    ("facts delivered out of order", ("LATE_FILL", "EARLY_EVENT")),
)


def _symbols(text: str) -> tuple[str, ...]:
    codes = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [c for c in codes if len(c) != 6 or not (c.isascii() and c.isdigit())]
    if not codes or bad:
        raise argparse.ArgumentTypeError(
            f"symbols are comma-separated 6-digit codes such as 005930,000660; bad: {bad or text!r}"
        )
    if len(set(codes)) != len(codes):
        raise argparse.ArgumentTypeError(f"a symbol is given twice: {text!r}")
    return codes


#: The most a channel may delay (a minute): a simulated day must not spill into the next one.
MAX_LATENCY_MS = 60_000


def _latency(text: str) -> Delay:
    try:
        delay = Delay.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if delay.high > MAX_LATENCY_MS:
        raise argparse.ArgumentTypeError(f"at most {MAX_LATENCY_MS:,} ms a channel, not {text!r}")
    return delay


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, not {value}")
    return value


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a seed is a whole number, not {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``simulate``."""
    parser.add_argument("--seed", type=_seed, default=7, help="seed of the whole run (default 7)")
    parser.add_argument(
        "--orders", type=_positive, default=500, help="orders the strategy places (default 500)"
    )
    parser.add_argument(
        "--latency-ms",
        type=_latency,
        default=Delay(5, 150),
        metavar="N|LOW-HIGH",
        help="delay of each channel (request, venue, delivery) in ms (default 5-150; 0: none)",
    )
    parser.add_argument(
        "--reorder", action="store_true", help="let independent deliveries overtake each other"
    )
    parser.add_argument(
        "--symbols",
        type=_symbols,
        default=DEFAULT_SYMBOLS,
        metavar="CODES",
        help="comma-separated stock codes (default 005930,000660,035420)",
    )
    parser.add_argument(
        "--step-ms", type=_positive, default=200, help="time between bars in ms (default 200)"
    )
    parser.add_argument(
        "--sessions",
        action="store_true",
        help="enforce KRX hours in Korea time (RC4057/RC4058, MARKET_CLOSED)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument(
        "--events-out",
        metavar="FILE",
        help="write every event the engine took as JSON lines (replayable with OrderBook.replay)",
    )
    parser.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="progress bar on stderr driven by simulated time (auto: on a terminal, once a "
        "run has taken 2 s)",
    )
    parser.add_argument(
        "--orders-out",
        metavar="FILE",
        help="write the orders (one row each) to FILE.parquet or FILE.csv (needs pandas)",
    )
    parser.add_argument(
        "--report",
        metavar="FILE.html",
        help="draw the day as one self-contained HTML file (needs the [report] extra)",
    )


class _Progress:
    """A progress bar (tqdm) on stderr driven by simulated time: 09:00 to the session's end.

    It shows the simulated clock, the orders placed and the events taken. ``delay`` seconds
    pass before it appears, so a run that ends sooner prints nothing.
    """

    #: Steps between two updates (a step takes microseconds; the bar needs no more).
    EVERY = 64

    def __init__(self, out: IO[str], total_ms: int, orders: int, delay: float) -> None:
        from tqdm import tqdm

        self.orders = orders
        self.total = max(1, total_ms // 1000)
        self.calls = 0
        self.bar = tqdm(
            total=self.total,
            unit="s",
            desc="simulated",
            file=out,
            delay=delay,
            dynamic_ncols=True,
            bar_format="{desc} {percentage:3.0f}%|{bar}| {elapsed}<{remaining} {postfix}",
        )

    def __call__(self, harness: Harness) -> None:
        self.calls += 1
        if self.calls % self.EVERY == 0:
            self._show(harness, min(self.total, harness.exchange.now_ms // 1000))

    def _show(self, harness: Harness, done: int) -> None:
        self.bar.set_postfix_str(
            f"{harness.now.astimezone(KST):%H:%M:%S} KST, {harness.placed:,}/{self.orders:,} "
            f"orders, {harness.events:,} events",
            refresh=False,
        )
        self.bar.update(done - self.bar.n)

    def close(self, harness: Harness | None) -> None:
        """Show the end of the day (open orders expire at the close) and release the line."""
        if harness is not None:
            self._show(harness, self.total)
        self.bar.close()


@contextmanager
def batch_gc(threshold: int = 50_000) -> Iterator[None]:
    """Run a long simulation with the cyclic garbage collector scanning less often.

    A simulated day allocates millions of long-lived objects (orders, events) and almost no
    reference cycles, so the default young-generation threshold (700) triggers collections
    that find nothing. The old settings come back afterwards.
    """
    old = gc.get_threshold()
    gc.collect()
    gc.set_threshold(threshold, old[1], old[2])
    try:
        yield
    finally:
        gc.set_threshold(*old)


def run_simulate(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    """Run ``simulate`` with parsed ``args``; return the exit status."""
    latency = Latency(args.latency_ms, args.latency_ms, args.latency_ms, args.reorder)
    sessions = KoreaSessions() if args.sessions else None
    show = args.progress == "always" or (args.progress == "auto" and err.isatty())
    try:
        outputs = _outputs(args)
    except (ValueError, ImportError) as exc:
        print(f"order-engine simulate: {exc}" if isinstance(exc, ValueError) else exc, file=err)
        return 2
    events_file: IO[str] | None = None
    journal: bool | Callable[[ev.Event], object] = False
    kept: list[ev.Event] = []  # the events, when a report or the orders' times need them
    recorder = outputs.recorder(args.symbols)
    if outputs.keep_events:
        journal = kept.append
    if args.events_out:
        try:
            events_file = open(args.events_out, "w", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            print(f"order-engine simulate: cannot write {args.events_out}: {exc}", file=err)
            return 2
        journal = _writer(events_file, kept.append if outputs.keep_events else None)
        expected = args.orders * EVENT_BYTES_PER_ORDER
        if expected >= WARN_EVENTS_BYTES:
            print(
                f"order-engine simulate: warning: {args.events_out} will take about "
                f"{expected / 1e6:,.0f} MB ({EVENT_BYTES_PER_ORDER} bytes an order); read it "
                "back with OrderBook.replay(..., journal=False) to keep memory low",
                file=err,
            )
    harness: Harness | None = None
    steps = max(1, DAY_MS // args.step_ms)
    delay = 0.0 if args.progress == "always" else 2.0
    progress = _Progress(err, steps * args.step_ms, args.orders, delay) if show else None
    started = time.perf_counter()
    try:
        with batch_gc():
            harness, report = run_session(
                seed=args.seed,
                orders=args.orders,
                latency=latency,
                symbols=args.symbols,
                step_ms=args.step_ms,
                sessions=sessions,
                journal=journal,
                on_step=progress,
                on_start=None if recorder is None else recorder.attach,
            )
        if events_file is not None:
            events_file.close()
    except OSError as exc:  # writing --events-out failed (a full disk...): the run is void
        print(f"order-engine simulate: cannot write {args.events_out}: {exc}", file=err)
        return 2
    finally:
        if events_file is not None and not events_file.closed:
            events_file.close()
        if progress is not None:
            progress.close(harness)
    elapsed = time.perf_counter() - started
    if args.json:
        data = {"config": _config(args), **report.to_dict()}  # no timings: same seed, same bytes
        json.dump(data, out, ensure_ascii=False, sort_keys=False)
        out.write("\n")
    else:
        _summary(args, harness, report, elapsed, out)
    status = outputs.write(args, harness, report, kept, recorder, elapsed, err)
    if status:
        return status
    return 0 if report.ok else 1


def _writer(
    file: IO[str], also: Callable[[ev.Event], object] | None = None
) -> Callable[[ev.Event], object]:
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    write = file.write

    if also is None:

        def write_event(event: ev.Event) -> None:
            write(dumps(event.to_dict()) + "\n")

        return write_event

    def write_and_keep(event: ev.Event) -> None:
        write(dumps(event.to_dict()) + "\n")
        also(event)

    return write_and_keep


class _Outputs:
    """The files a run writes besides ``--events-out``: ``--orders-out`` and ``--report``."""

    def __init__(self, orders_out: str | None, report: str | None) -> None:
        self.orders_out = orders_out
        self.report = report
        self.keep_events = bool(orders_out or report)

    def recorder(self, symbols: tuple[str, ...]) -> Any:
        """Return a recorder of what the events do not hold (prices, refusals, races)."""
        if not self.report:
            return None
        from adapters.report import Recorder

        return Recorder(symbols)

    def write(
        self,
        args: argparse.Namespace,
        harness: Harness,
        report: Report,
        events: list[ev.Event],
        recorder: Any,
        elapsed: float,
        err: IO[str],
    ) -> int:
        """Write the files asked for; return 2 (and say why) when one cannot be written."""
        path = self.orders_out
        try:
            if path:
                from adapters.frames_io import write_frame
                from engine.frames import orders_frame

                write_frame(orders_frame(harness.book.orders, events), path)
            path = self.report
            if path:
                from adapters.report import write_report

                text = io.StringIO()
                _summary(args, harness, report, elapsed, text)
                write_report(recorder.day(events, summary=text.getvalue()), path)
        except ImportError as exc:
            print(str(exc), file=err)
            return 2
        except OSError as exc:
            print(f"order-engine simulate: cannot write {path}: {exc}", file=err)
            return 2
        return 0


def _outputs(args: argparse.Namespace) -> _Outputs:
    """Check the output options before the run (a bad name or a missing extra runs nothing)."""
    if args.orders_out:
        from adapters.frames_io import check_frame_path
        from engine.frames import require_pandas

        check_frame_path(args.orders_out)
        require_pandas("--orders-out")
    if args.report:
        if not args.report.lower().endswith(".html"):
            raise ValueError(f"{args.report}: the report is an .html file")
        from adapters.report import require_plotly

        require_plotly()
    return _Outputs(args.orders_out, args.report)


def _config(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "seed": args.seed,
        "orders": args.orders,
        "latency_ms": str(args.latency_ms),
        "reorder": args.reorder,
        "symbols": list(args.symbols),
        "step_ms": args.step_ms,
        "sessions": args.sessions,
    }


def _summary(
    args: argparse.Namespace, harness: Harness, report: Report, elapsed: float, out: IO[str]
) -> None:
    def line(text: str = "") -> None:
        out.write(text + "\n")

    exchange = harness.exchange
    day = exchange.start.astimezone(KST)
    planned = exchange.start + timedelta(milliseconds=max(1, DAY_MS // args.step_ms) * args.step_ms)
    ended = exchange.now.astimezone(KST)
    why = (
        "when the strategy had nothing left to do"
        if harness.steps * args.step_ms < DAY_MS
        else "when the market data ran out"
    )
    line(
        f"order-engine simulate: seed {args.seed}, {args.orders:,} orders on "
        f"{', '.join(args.symbols)}; latency {args.latency_ms} per channel"
        f"{' (reordered)' if args.reorder else ''}; a bar every {args.step_ms} ms"
    )
    line(
        f"day {day:%Y-%m-%d}, market data {day:%H:%M:%S}-{planned.astimezone(KST):%H:%M:%S} KST; "
        f"ended {ended:%H:%M:%S}.{ended.microsecond // 1000:03d} KST, {why}"
    )
    line(f"(open orders expired at the end); {harness.steps:,} steps in {elapsed:.2f} s")
    line()
    placements = report.placements
    rejected = placements["rejected"]
    successors = sum(1 for order in harness.book.orders.values() if order.origin)
    placed = report.orders - successors
    modifies = placements["modifies"]
    modifies_rejected = placements.get("modifies_rejected", {})
    modifies_refused = placements.get("modifies_refused", {})
    line(
        f"Orders: {report.orders:,} in the book = {placed:,} placed + {successors:,} "
        f"new orders from modifies"
    )
    line(
        f"  placements sent {placements['sent']:,}, refused by the order server "
        f"{_counts(rejected) if rejected else 'none'}"
    )
    line(
        f"  modifies sent {modifies:,}, rejected {_counts(modifies_rejected) or 'none'}, "
        f"refused by the engine (never sent) {_counts(modifies_refused) or 'none'}"
    )
    for state in OrderState:
        count = report.states.get(state.name, 0)
        if count:
            line(f"  {_pad(state.label, 9)}{state.name:<17}{count:>10,}")
    shares = report.shares
    line(
        f"Shares: {shares['filled']:,} filled, {shares['cancelled']:,} cancelled, "
        f"{shares['replaced']:,} moved by modifies"
    )
    line()
    cancels = report.cancels
    line(
        f"Cancels: {cancels['requested']:,} requested, {cancels['allowed']:,} allowed and sent, "
        f"{sum(cancels['refused'].values()):,} refused by the engine (never sent)"
    )
    for reason, count in cancels["refused"].items():
        line(f"  refused {reason:<22}{count:>8,}  {Refusal[reason].description}")
    line(
        f"  exchange: {cancels['confirmed']:,} confirmed, rejected "
        f"{_counts(cancels['rejected']) if cancels['rejected'] else 'none'}"
    )
    line()
    if report.races:
        line("Races observed (scenario numbers: docs/policies.md):")
        races = dict(report.races)
        groups = [(title, [k for k in kinds if k in races]) for title, kinds in _RACE_GROUPS]
        grouped = {k for _, kinds in groups for k in kinds}
        groups.append(("other", [k for k in races if k not in grouped]))
        for title, kinds in groups:
            if kinds:
                line(f"  {title}:")
            for kind in kinds:
                line(f"    {kind:<24}{races[kind]:>8,}  {_RACE_TEXT.get(kind, '')}")
    else:
        why = " (no latency: a cancel beats every later fill)" if _zero(args) else ""
        line(f"Races observed: none{why}")
    line(f"Anomalies kept for reconciliation: {_counts(report.anomalies) or 'none'}")
    line(f"Events delivered to the engine (and its own cancel reservations): {report.events:,}")
    line()
    if report.ok:
        line(
            f"Engine view == exchange truth: MATCHED for all {len(exchange.orders):,} orders; "
            "F + C + M + L == Q held for every order."
        )
    else:
        line(
            f"Engine view != exchange truth: {len(report.mismatches):,} differences, "
            f"{len(report.invariant_violations):,} invariant violations"
        )
        for mismatch in report.mismatches[:20]:
            line(f"  {mismatch}")
        for violation in report.invariant_violations[:20]:
            line(f"  {violation}")
    line()
    line("next: order-engine simulate --report day.html   the day as a report")
    line("      order-engine sweep                        many seeds and latencies at once")
    line("      docs/index.md                             the documentation")


def _pad(text: str, width: int) -> str:
    """Pad ``text`` to ``width`` terminal columns (Hangul takes two)."""
    columns = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(0, width - columns)


def _zero(args: argparse.Namespace) -> bool:
    delay: Delay = args.latency_ms
    return delay.is_zero


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counts.items())
