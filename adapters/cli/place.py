"""``order-engine place``: send one new order to Kiwoom (kt10000 buy, kt10001 sell).

The options are checked before anything is sent. The order goes through
:class:`adapters.kiwoom.KiwoomBroker` over the account's journal (the same one ``cancel`` and
``open-orders`` keep, ``--journal PATH`` / ``--no-journal``), so an accepted order is in the
account's book with its 7-digit number: ``order-engine open-orders`` lists it and
``order-engine cancel --ord-no`` cancels it. Credentials come from ``KIWOOM_APPKEY`` and
``KIWOOM_SECRETKEY`` only, as for ``cancel``.
"""

from __future__ import annotations

import argparse
from typing import Final, TextIO

from adapters.broker import TicketStatus
from adapters.cli.kiwoom_cli import EXIT, _broker, _connect, add_connection_arguments, stock_code
from adapters.kiwoom.errors import KiwoomError
from engine import Side

__all__ = ["MARKET", "add_place_arguments", "run_place"]

#: Kiwoom's ``trde_tp`` of a limit order (보통) and of a market order (시장가).
LIMIT: Final = "0"
MARKET: Final = "3"

#: Failures a rejected ticket names by the error's class: the request never reached Kiwoom.
NOT_SENT: Final = frozenset({"ConnectFailed", "TokenUnavailable"})

#: The most shares one order may ask for here (Kiwoom's field is 12 digits; this is a sanity cap).
MAX_QTY: Final = 10_000_000


def _quantity(text: str) -> int:
    """Read ``--qty``: a whole number of shares, at least 1."""
    if not (text.isascii() and text.isdigit()) or int(text) < 1 or int(text) > MAX_QTY:
        raise argparse.ArgumentTypeError(
            f"a quantity is a whole number of shares from 1 to {MAX_QTY:,}, not {text!r}"
        )
    return int(text)


def _price(text: str) -> int:
    """Read ``--price``: a whole number of won, at least 1."""
    cleaned = text.replace(",", "").replace("_", "")
    if not (cleaned.isascii() and cleaned.isdigit()) or int(cleaned) < 1:
        raise argparse.ArgumentTypeError(f"a price is a whole number of won, not {text!r}")
    return int(cleaned)


def add_place_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``order-engine place``."""
    parser.add_argument("side", choices=("buy", "sell"), help="buy (kt10000) or sell (kt10001)")
    parser.add_argument("--stk-cd", required=True, type=stock_code, help="stock code, e.g. 005930")
    parser.add_argument("--qty", required=True, type=_quantity, help="shares to order")
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument("--price", type=_price, help="limit price in won (a limit order)")
    how.add_argument("--market", action="store_true", help="a market order (no price)")
    parser.add_argument(
        "--exchange", choices=("KRX", "NXT", "SOR"), default="KRX", help="venue (default KRX)"
    )
    add_connection_arguments(parser)


def run_place(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run ``order-engine place``; return its exit status (the values of :data:`EXIT`).

    0 the order was accepted (its number is printed), 1 it could not be sent (no connection, no
    token), 2 bad options, 4 Kiwoom rejected it (an RC code, a refused key, a throttle), 5 the
    outcome is unknown (look with ``open-orders`` before placing it again).
    """
    client = _connect(args, err)
    if client is None:
        return EXIT["usage"]
    side = Side.BUY if args.side == "buy" else Side.SELL
    price = 0 if args.market else args.price
    what = f"{args.side} {args.qty:,} {args.stk_cd} " + (
        "at market" if args.market else f"at {price:,}"
    )
    with client:
        broker = _broker(args, client, err)
        if broker is None:
            return EXIT["failed"]
        try:
            ticket = broker.place(
                stk_cd=args.stk_cd,
                side=side,
                qty=args.qty,
                price=price,
                trde_tp=MARKET if args.market else LIMIT,
                exchange=args.exchange,
            )
        except KiwoomError as exc:  # refused before sending (the book's trading day is over)
            print(f"error: {exc.message}; nothing was sent", file=err)
            return EXIT["usage"]
        finally:
            broker.close()
    if ticket.status is TicketStatus.ACCEPTED:
        print(f"placed:   order {ticket.ord_no}: {what} on {args.exchange}", file=out)
        if ticket.message:
            print(f"          {ticket.message}", file=out)
        return EXIT["accepted"]
    if ticket.status is TicketStatus.REJECTED:
        if ticket.code in NOT_SENT:
            reason = (
                f"cannot connect to {client.base_url}"
                if ticket.code == "ConnectFailed"
                else (f"{ticket.code}: {ticket.message}")
            )
            print(f"error: {reason}; nothing was sent", file=err)
            return EXIT["failed"]
        print(f"rejected: {what}: {ticket.code} {ticket.message}".rstrip(), file=out)
        return EXIT["rejected"]
    print(
        f"outcome:  UNKNOWN for {what} ({ticket.code}: {ticket.message}); do NOT place it "
        "again before `order-engine open-orders` shows whether it is there",
        file=out,
    )
    return EXIT["unknown"]
