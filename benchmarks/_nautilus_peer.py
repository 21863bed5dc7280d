"""The head-to-head stream of ``bench_engine.py``: this engine and NautilusTrader's orders.

Seven operations per order, the events built inside the timed loop as a live feed pays it:

=====================  ===========================================  ============================
operation              this engine (``OrderBook``, journal on)      NautilusTrader (``LimitOrder``)
=====================  ===========================================  ============================
the order exists       ``apply(OrderAccepted)`` (접수)               ``LimitOrder(...)`` + submitted
confirmed              ``apply(OrderConfirmed)`` (확인)              ``apply(OrderAccepted)``
fill 3 of 10           ``apply(OrderFilled)``                       ``apply(OrderFilled)``
fill 2 more            ``apply(OrderFilled)``                       ``apply(OrderFilled)``
cancel all that's open ``request_cancel(no, 0)`` (checked, reserved) ``apply(OrderPendingCancel)``
its acceptance         ``apply(CancelAccepted)``                    (none: counted with the next)
its confirmation       ``apply(CancelConfirmed)``                   ``apply(OrderCanceled)``
=====================  ===========================================  ============================

Orders run in blocks of 1,000 live ones, each operation over the whole block before the next.
NautilusTrader is optional: ``pip install 'kiwoom-order-engine[bench]'`` (or
``pip install nautilus_trader``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from engine import OrderBook, Side
from engine import events as ev

BLOCK = 1_000
OPS_PER_ORDER = 7
SYMBOLS = ("005930", "000660", "035420", "051910", "005380")


def engine_stream(n_orders: int) -> tuple[float, Any]:
    """Run the stream through an ``OrderBook`` with the journal on; return (seconds, book)."""
    book = OrderBook(journal=True)
    apply = book.apply
    request = book.request_cancel
    accepted, confirmed, filled = ev.OrderAccepted, ev.OrderConfirmed, ev.OrderFilled
    cancel_accepted, cancel_confirmed = ev.CancelAccepted, ev.CancelConfirmed
    buy, sell = Side.BUY, Side.SELL
    started = time.process_time()
    for base in range(0, n_orders, BLOCK):
        nums = [f"{i:07d}" for i in range(base + 1, min(base + BLOCK, n_orders) + 1)]
        for i, no in enumerate(nums):
            apply(accepted(no, SYMBOLS[i % 5], buy if i % 2 else sell, 10, 70_000))
        for no in nums:
            apply(confirmed(no))
        for no in nums:
            apply(filled(no, "1", 3, 70_000))
        for no in nums:
            apply(filled(no, "2", 2, 70_100))
        ids = [request(no, 0).request_id for no in nums]
        for no, rid in zip(nums, ids, strict=True):
            apply(cancel_accepted("C" + no, no, 0, rid))
        for no, rid in zip(nums, ids, strict=True):
            apply(cancel_confirmed("C" + no, no, 5, rid))
    return time.process_time() - started, book


def nautilus_available() -> bool:
    """Return True when nautilus_trader can be imported."""
    try:
        import nautilus_trader  # noqa: F401
    except ImportError:
        return False
    return True


def nautilus_stream(n_orders: int) -> tuple[float, Any]:
    """Run the same stream through NautilusTrader ``LimitOrder``s; return (seconds, orders)."""
    from nautilus_trader.core.uuid import UUID4
    from nautilus_trader.model.currencies import KRW
    from nautilus_trader.model.enums import LiquiditySide, OrderSide, OrderType
    from nautilus_trader.model.events import (
        OrderAccepted,
        OrderCanceled,
        OrderFilled,
        OrderPendingCancel,
        OrderSubmitted,
    )
    from nautilus_trader.model.identifiers import (
        AccountId,
        ClientOrderId,
        InstrumentId,
        StrategyId,
        TradeId,
        TraderId,
        VenueOrderId,
    )
    from nautilus_trader.model.objects import Money, Price, Quantity
    from nautilus_trader.model.orders import LimitOrder

    trader, strategy = TraderId("BENCH-001"), StrategyId("S-001")
    account = AccountId("KIWOOM-001")
    instruments = [InstrumentId.from_str(f"{s}.KRX") for s in SYMBOLS]
    qty10, qty3, qty2 = Quantity.from_int(10), Quantity.from_int(3), Quantity.from_int(2)
    px, px_up = Price.from_int(70_000), Price.from_int(70_100)
    fee = Money(0, KRW)
    buy, sell = OrderSide.BUY, OrderSide.SELL
    limit, taker = OrderType.LIMIT, LiquiditySide.TAKER

    def report(event: Any, orders: list[Any], venue_ids: list[Any]) -> None:
        """Apply ``event(...)`` (a venue report naming only the order) to every order."""
        for order, vid in zip(orders, venue_ids, strict=True):
            order.apply(
                event(
                    trader,
                    strategy,
                    order.instrument_id,
                    order.client_order_id,
                    vid,
                    account,
                    UUID4(),
                    0,
                    0,
                )
            )

    kept: list[Any] = []
    started = time.process_time()
    for base in range(0, n_orders, BLOCK):
        nums = [f"{i:07d}" for i in range(base + 1, min(base + BLOCK, n_orders) + 1)]
        orders = []
        for i, no in enumerate(nums):
            order = LimitOrder(
                trader,
                strategy,
                instruments[i % 5],
                ClientOrderId(no),
                buy if i % 2 else sell,
                qty10,
                px,
                UUID4(),
                0,
            )
            order.apply(
                OrderSubmitted(
                    trader,
                    strategy,
                    order.instrument_id,
                    order.client_order_id,
                    account,
                    UUID4(),
                    0,
                    0,
                )
            )
            orders.append(order)
        venue_ids = [VenueOrderId(no) for no in nums]

        report(OrderAccepted, orders, venue_ids)
        for fill_no, qty, price in (("1", qty3, px), ("2", qty2, px_up)):
            for order, vid in zip(orders, venue_ids, strict=True):
                order.apply(
                    OrderFilled(
                        trader,
                        strategy,
                        order.instrument_id,
                        order.client_order_id,
                        vid,
                        account,
                        TradeId(f"{vid.value}-{fill_no}"),
                        None,
                        order.side,
                        limit,
                        qty,
                        price,
                        KRW,
                        fee,
                        taker,
                        UUID4(),
                        0,
                        0,
                    )
                )
        report(OrderPendingCancel, orders, venue_ids)
        report(OrderCanceled, orders, venue_ids)
        kept.extend(orders)
    return time.process_time() - started, kept


def check_engine(book: Any) -> None:
    """Raise unless every order ended where the stream leads: 5 filled, 5 cancelled."""
    for order in book.orders.values():
        if (order.filled_qty, order.cancelled_qty, order.leaves_qty) != (5, 5, 0):
            raise SystemExit(f"the engine ended wrong: {order!r}")


def check_nautilus(orders: Any) -> None:
    """Raise unless every order ended where the stream leads: 5 filled, the rest cancelled."""
    for order in orders:
        if (int(order.filled_qty), order.status_string()) != (5, "CANCELED"):
            raise SystemExit(f"nautilus ended wrong: {order!r}")


PEERS: dict[str, Callable[[int], tuple[float, Any]]] = {
    "engine": engine_stream,
    "nautilus": nautilus_stream,
}
CHECKS: dict[str, Callable[[Any], None]] = {"engine": check_engine, "nautilus": check_nautilus}
