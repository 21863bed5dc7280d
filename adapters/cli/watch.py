"""``order-engine watch``: a live view of the account's orders from the real-time feed.

It reconciles over REST first (ka10075 and kt00007: the day so far), then follows the WebSocket
feed, and prints one line per change of an order: the time (Korea), the order number, code and
side, the state in Korean and English, and its filled / cancelled / still-open shares::

    10:31:02  0000001  005930 BUY   부분체결 PARTIALLY_FILLED  F=4 C=0 L=6

``--json`` prints one JSON object per line instead; ``--for SECONDS`` stops after that long (else
Ctrl-C or SIGTERM). Credentials come from ``KIWOOM_APPKEY`` and ``KIWOOM_SECRETKEY`` only. Exit
status: 0 stopped as asked; 1 the feed stopped by itself (another session of the same app key
replaced it, or the token was refused), with the reason on standard error; 2 bad options.
"""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any, TextIO

from adapters.cli.kiwoom_cli import add_connection_arguments
from adapters.cli.sim_server import positive_seconds, stop_on_sigterm
from adapters.kiwoom.broker import KiwoomBroker
from adapters.kiwoom.client import KiwoomClient
from adapters.kiwoom.errors import KiwoomError
from adapters.kiwoom.feed import KiwoomFeed
from adapters.kiwoom.transport import MOCK_URL, REAL_URL
from engine import Order
from engine import events as ev
from engine.sessions import KST

__all__ = ["add_arguments", "run_watch"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``watch``."""
    add_connection_arguments(parser)
    parser.add_argument(
        "--ws-url",
        metavar="URL",
        help="the WebSocket of a loopback server (sim-server prints it on its second line); "
        "needed with --base-url",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument(
        "--for",
        dest="seconds",
        type=positive_seconds,
        default=None,
        metavar="SECONDS",
        help="stop after this many seconds (default: until Ctrl-C)",
    )


class _View:
    """What was last printed of each order; the broker is the book's one writer."""

    def __init__(self, broker: KiwoomBroker, out: TextIO, as_json: bool) -> None:
        self.broker = broker
        self.out = out
        self.as_json = as_json
        self.shown: dict[str, tuple[Any, ...]] = {}
        self.refused = 0

    def reconcile(self) -> None:
        self.broker.reconcile()
        with self.broker.lock:
            self._show(sorted(self.broker.book.orders))

    def apply_events(self, events: list[ev.Event]) -> None:
        report = self.broker.apply_events(events)
        self.refused += len(report.refused)
        touched: list[str] = []
        for event in events:
            for name in ("orig_ord_no", "ord_no"):
                number = getattr(event, name, "")
                if number and number not in touched:
                    touched.append(number)
        with self.broker.lock:
            self._show(touched)

    def _show(self, numbers: Iterable[str]) -> None:
        now = datetime.now(KST)
        for number in numbers:
            order = self.broker.book.orders.get(number)
            if order is None:
                continue
            key = (order.state, order.filled_qty, order.cancelled_qty, order.leaves_qty)
            if self.shown.get(number) == key:
                continue
            self.shown[number] = key
            self.out.write(self._line(order, now) + "\n")
        self.out.flush()

    def _line(self, order: Order, now: datetime) -> str:
        if self.as_json:
            return json.dumps(
                {
                    "time": now.isoformat(timespec="milliseconds"),
                    "ord_no": order.ord_no,
                    "stk_cd": order.stk_cd,
                    "side": order.side.name,
                    "state": order.state.name,
                    "state_ko": order.state.label,
                    "qty": order.qty,
                    "filled": order.filled_qty,
                    "cancelled": order.cancelled_qty,
                    "leaves": order.leaves_qty,
                },
                ensure_ascii=False,
            )
        return (
            f"{now:%H:%M:%S}  {order.ord_no}  {order.stk_cd} {order.side.name:<4}  "
            f"{order.state.label} {order.state.name}  "
            f"F={order.filled_qty} C={order.cancelled_qty} L={order.leaves_qty}"
        )


def run_watch(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run ``watch`` with parsed ``args``; return the exit status."""
    if args.base_url is not None and not args.ws_url:
        print("error: --base-url needs --ws-url (sim-server prints it second)", file=err)
        return 2
    timeout = (3.05, args.timeout)
    try:
        if args.base_url is not None:
            client = KiwoomClient(args.base_url, allow_loopback=True, timeout=timeout)
        else:
            client = KiwoomClient(MOCK_URL if args.mock else REAL_URL, timeout=timeout)
    except KiwoomError as exc:
        print(f"error: {exc.message}", file=err)
        return 2
    with client:
        view = _View(KiwoomBroker(client), out, args.json)
        try:
            feed = KiwoomFeed.for_broker(
                client,
                on_events=view.apply_events,
                on_connected=view.reconcile,
                url=args.ws_url,
                allow_loopback=args.base_url is not None,
            )
        except KiwoomError as exc:
            print(f"error: {exc.message}", file=err)
            return 2
        return _follow(feed, args.seconds, err)


def _follow(feed: KiwoomFeed, seconds: float | None, err: TextIO) -> int:
    """Run ``feed`` until ``seconds`` pass, a signal, or the feed stops by itself."""
    stop = threading.Event()
    feed.on_stopped = lambda _reason: stop.set()
    try:
        with stop_on_sigterm(stop), feed:
            stop.wait(seconds)
    except KeyboardInterrupt:
        pass
    if feed.stop_reason not in ("", "stopped"):
        print(f"the feed stopped: {feed.stop_reason}", file=err)
        return 1
    return 0
