"""``order-engine report EVENTS -o day.html``: a recorded day drawn after the fact.

EVENTS is a JSON-lines file of engine events (``simulate --events-out``) or the SQLite journal
of a live session (``KiwoomBroker(journal=...)``, ``order-engine cancel``; ``--day`` picks the
day, default its latest). What the events do not hold (market prices, cancels the engine
refused) is said at the top of the page.
"""

from __future__ import annotations

import argparse
from datetime import date
from typing import IO

import attrs

__all__ = ["add_arguments", "run_report"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``report``."""
    parser.add_argument(
        "events",
        metavar="EVENTS",
        help="JSON lines of engine events (simulate --events-out), or a live session's journal",
    )
    parser.add_argument(
        "--day",
        type=date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="with a journal: the trading day to draw (default: its latest)",
    )
    parser.add_argument(
        "-o", "--output", required=True, metavar="FILE.html", help="the HTML file to write"
    )
    parser.add_argument("--title", default="", help="the page's title")


def run_report(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    """Run ``report`` with parsed ``args``; return the exit status (2: nothing written)."""
    from engine.frames import MissingExtra

    if not args.output.lower().endswith(".html"):
        print(f"order-engine report: {args.output}: the report is an .html file", file=err)
        return 2
    try:
        from adapters.journal import JournalError, is_journal_file, read_journal
        from adapters.report import (
            day_from_events,
            read_events,
            require_plotly,
            summarise,
            write_report,
        )

        require_plotly()
        if is_journal_file(args.events):
            try:
                _day, events = read_journal(args.events, args.day)
            except JournalError as exc:
                print(f"order-engine report: {exc}", file=err)
                return 2
        else:
            events = read_events(args.events)
        day = day_from_events(events)
        day = attrs.evolve(day, summary=summarise(day))
        write_report(day, args.output, title=args.title or f"order-engine: {args.events}")
    except MissingExtra as exc:
        print(str(exc), file=err)
        return 2
    except (OSError, ValueError) as exc:
        print(f"order-engine report: {exc}", file=err)
        return 2
    out.write(f"{args.output}: {len(events):,} events, races {len(day.races):,}\n")
    return 0
