"""``order-engine cancel`` and ``order-engine open-orders``: Kiwoom from the command line.

Credentials come from ``KIWOOM_APPKEY`` and ``KIWOOM_SECRETKEY`` only (never from arguments,
which other users can read in the process list). ``cancel`` reads the account first (ka10075
and kt00007, every page), lets the engine decide, prints the decision, sends kt10003 only when
the engine allows it, and prints the outcome.

Both commands keep the account's book in a journal (:mod:`adapters.journal`) by default: a
per-account file in the user's state directory (``--journal PATH`` to choose another,
``--no-journal`` to keep nothing). So a ``cancel`` re-run after exit 5 (outcome unknown) finds
its earlier reservation, marked unknown: the engine refuses to send again (``OUTCOME_UNKNOWN``,
exit 3) until reconciliation has found the earlier cancel on the server or, after the grace
period, established that it never arrived.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Final, TextIO

from adapters.broker import CancelStatus
from adapters.journal import JournalError, account_key, default_journal_path
from adapters.kiwoom.broker import KiwoomBroker
from adapters.kiwoom.client import KiwoomClient, plain_code
from adapters.kiwoom.errors import ConnectFailed, KiwoomError
from adapters.kiwoom.transport import MOCK_URL, REAL_URL
from engine import Order

__all__ = [
    "EXIT",
    "add_cancel_arguments",
    "add_connection_arguments",
    "add_open_orders_arguments",
    "failure",
    "order_number",
    "run_cancel",
    "run_open_orders",
    "stock_code",
]

#: Exit statuses of ``cancel`` (and ``open-orders``), by what happened.
EXIT: Final = {
    "accepted": 0,
    "failed": 1,  # the account could not be read: nothing was sent
    "usage": 2,  # bad options or configuration: nothing was sent
    "refused": 3,  # the engine refused the cancel: nothing was sent
    "rejected": 4,  # Kiwoom refused it (RC4033, ...): definitive
    "unknown": 5,  # the outcome is unknown: do NOT send again; check open-orders
}


def order_number(text: str) -> str:
    """Read an order number option: exactly 7 digits, as Kiwoom numbers orders (``0000140``)."""
    if len(text) != 7 or not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(
            f"an order number is 7 digits such as 0000140, not {text!r}"
        )
    return text


def stock_code(text: str) -> str:
    """Read a stock code option: 6 letters or digits, such as ``005930`` (an ``A`` prefix is ok)."""
    code = text[1:] if len(text) == 7 and text[0] == "A" else text
    if len(code) != 6 or not (code.isascii() and code.isalnum()):
        raise argparse.ArgumentTypeError(
            f"a stock code is 6 characters such as 005930, not {text!r}"
        )
    return code.upper()


def failure(exc: KiwoomError, base_url: str) -> str:
    """Say in one line why a request failed: "cannot connect to URL" when nothing answered."""
    if isinstance(exc, ConnectFailed) or isinstance(exc.__cause__, ConnectFailed):
        return f"cannot connect to {base_url}"
    return str(exc)


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--mock | --real | --base-url URL`` and ``--timeout`` to ``parser``."""
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--mock", action="store_true", help=f"Kiwoom's mock server ({MOCK_URL})")
    where.add_argument("--real", action="store_true", help=f"Kiwoom's real server ({REAL_URL})")
    where.add_argument(
        "--base-url",
        metavar="URL",
        help="a loopback Kiwoom-compatible server, e.g. the one `order-engine sim-server` prints",
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, metavar="S", help="read timeout in seconds"
    )
    journal = parser.add_mutually_exclusive_group()
    journal.add_argument(
        "--journal",
        metavar="PATH",
        type=Path,
        help="the account's journal file (default: a per-account file in the user's state "
        "directory, $XDG_STATE_HOME/kiwoom-order-engine/)",
    )
    journal.add_argument(
        "--no-journal",
        action="store_true",
        help="keep no journal: a re-run after an unknown outcome cannot know of it",
    )


def add_cancel_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``order-engine cancel``."""
    parser.add_argument(
        "--ord-no", required=True, type=order_number, help="the order to cancel (7 digits)"
    )
    parser.add_argument(
        "--stk-cd", required=True, type=stock_code, help="its stock code, e.g. 005930"
    )
    parser.add_argument("--qty", default="0", help='shares to cancel; "0" (default) = all open')
    parser.add_argument("--exchange", default=None, help="KRX, NXT or SOR (default: the order's)")
    add_connection_arguments(parser)


def add_open_orders_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``order-engine open-orders``."""
    parser.add_argument("--stk-cd", default=None, type=stock_code, help="only this stock code")
    add_connection_arguments(parser)


def _connect(args: argparse.Namespace, err: TextIO) -> KiwoomClient | None:
    """Return the client the options name, or say on ``err`` why there is none."""
    timeout = (3.05, args.timeout)
    try:
        if args.base_url is not None:
            return KiwoomClient(args.base_url, allow_loopback=True, timeout=timeout)
        return KiwoomClient(MOCK_URL if args.mock else REAL_URL, timeout=timeout)
    except KiwoomError as exc:
        print(f"error: {exc.message}", file=err)
        return None


def journal_path(args: argparse.Namespace, client: KiwoomClient) -> Path | None:
    """Return the journal the options name (None with ``--no-journal``)."""
    if getattr(args, "no_journal", False):
        return None
    chosen: Path | None = getattr(args, "journal", None)
    if chosen is not None:
        return chosen
    return default_journal_path(account_key(client.base_url, client.tokens.fingerprint()))


def _broker(args: argparse.Namespace, client: KiwoomClient, err: TextIO) -> KiwoomBroker | None:
    """Return the broker over the options' journal, or say on ``err`` why there is none."""
    path = journal_path(args, client)
    try:
        broker = KiwoomBroker(client, journal=path)
    except JournalError as exc:
        print(f"error: {exc}; nothing was sent", file=err)
        return None
    if path is not None:
        print(f"journal:  {path}", file=err)
    for request_id in broker.unknown:
        print(f"journal:  cancel {request_id} has an unknown outcome: reconciling", file=err)
    return broker


def run_cancel(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run ``order-engine cancel``; return its exit status (see :data:`EXIT`)."""
    client = _connect(args, err)
    if client is None:
        return EXIT["usage"]
    with client:
        broker = _broker(args, client, err)
        if broker is None:
            return EXIT["failed"]
        try:
            return _cancel(args, broker, out, err)
        finally:
            broker.close()


def _cancel(args: argparse.Namespace, broker: KiwoomBroker, out: TextIO, err: TextIO) -> int:
    book = broker.book
    try:
        broker.reconcile(book)
    except KiwoomError as exc:
        print(
            "error: cannot read the account, nothing was sent: "
            f"{failure(exc, broker.client.base_url)}",
            file=err,
        )
        return EXIT["failed"]
    order = book.orders.get(args.ord_no)
    if order is not None:
        if order.stk_cd != args.stk_cd:
            print(
                f"error: order {args.ord_no} is for {order.stk_cd}, not {args.stk_cd}; "
                "nothing was sent",
                file=err,
            )
            return EXIT["usage"]
        if args.exchange is not None and args.exchange != order.exchange:
            print(
                f"error: order {args.ord_no} was placed on {order.exchange}, not "
                f"{args.exchange}; nothing was sent",
                file=err,
            )
            return EXIT["usage"]
        print(f"order:    {_describe(order)}", file=out)
    outcome = broker.cancel(book, args.ord_no, args.qty)
    print(f"decision: {outcome.decision.describe()}", file=out)
    if outcome.status is CancelStatus.REFUSED:
        print("nothing was sent", file=out)
        return EXIT["refused"]
    ticket = outcome.ticket
    assert ticket is not None and outcome.request is not None
    print(f"sent:     kt10003 cncl_qty={outcome.request.cncl_qty!r}", file=out)
    if outcome.status is CancelStatus.ACCEPTED:
        print(f"outcome:  accepted, cancel number {ticket.ord_no} ({ticket.message})", file=out)
        return EXIT["accepted"]
    if outcome.status is CancelStatus.REJECTED:
        print(f"outcome:  rejected by Kiwoom: {ticket.code} {ticket.message}", file=out)
        return EXIT["rejected"]
    print(f"outcome:  UNKNOWN ({ticket.code}: {ticket.message})", file=out)
    try:
        report = broker.reconcile(book)
    except KiwoomError as exc:
        report = None
        print(f"          reconciling failed too: {exc}", file=out)
    if report is not None and outcome.request.request_id in report.resolved:
        order = book.orders[args.ord_no]
        found = [c for c in order.cancels if c.request_id == outcome.request.request_id]
        if found and found[0].cancel_no:
            print(
                f"          the server did take it: cancel number {found[0].cancel_no}",
                file=out,
            )
            return EXIT["accepted"]
    print(
        "          do NOT send it again; check with `order-engine open-orders` first",
        file=out,
    )
    return EXIT["unknown"]


def run_open_orders(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run ``order-engine open-orders``: print every open order (ka10075, all pages).

    With a journal, the account's book is reconciled too (settling what earlier commands left
    unknown), and cancels still unknown are listed on stderr.
    """
    client = _connect(args, err)
    if client is None:
        return EXIT["usage"]
    with client:
        broker = None if getattr(args, "no_journal", False) else _broker(args, client, err)
        if broker is None and not getattr(args, "no_journal", False):
            return EXIT["failed"]
        try:
            if broker is not None:
                report = broker.reconcile()  # reads every open order too (ka10075)
                for request_id in report.unresolved:
                    print(f"unknown:  cancel {request_id} not settled yet", file=err)
                code = None if args.stk_cd is None else plain_code(args.stk_cd)
                rows = [r for r in report.open_orders if code is None or r.stk_cd == code]
            else:
                rows = client.open_orders(stk_cd=args.stk_cd)
        except KiwoomError as exc:
            print(f"error: cannot read open orders: {failure(exc, client.base_url)}", file=err)
            return EXIT["failed"]
        finally:
            if broker is not None:
                broker.close()
    print(
        f"{'ord_no':<8} {'stk_cd':<7} {'side':<4} {'qty':>8} {'price':>9} {'filled':>8} "
        f"{'open':>8} {'status':<4} venue  orig",
        file=out,
    )
    for r in rows:
        print(
            f"{r.ord_no:<8} {r.stk_cd:<7} {r.side.name:<4} {r.qty:>8} {r.price:>9} "
            f"{r.filled_qty:>8} {r.open_qty:>8} {r.status:<4} {r.exchange:<6} {r.orig_ord_no}",
            file=out,
        )
    print(f"{len(rows)} open order(s)", file=out)
    return 0


def _describe(order: Order) -> str:
    return (
        f"{order.ord_no} {order.stk_cd} {order.side.name} {order.state.value} "
        f"Q={order.qty} filled={order.filled_qty} cancelled={order.cancelled_qty} "
        f"open={order.leaves_qty}"
    )
