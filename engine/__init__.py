"""The order state-machine engine: orders, events, the cancel decision, exact bookkeeping.

Pure and deterministic: no I/O, no clock, no global randomness.
"""

#: The version of the ``kiwoom-order-engine`` distribution (the one place it is written down:
#: ``pyproject.toml`` reads it from here).
__version__ = "0.1.0"

from engine import events
from engine.book import AnomalyKind, OrderBook, SessionCalendar
from engine.decision import CancelDecision, CancelRequest, ModifyRequest, parse_cancel_qty
from engine.errors import (
    CancelRefused,
    EngineError,
    EventDecodeError,
    InvalidEvent,
    InvalidTime,
    ModifyRefused,
    ParkingFull,
    UnknownOrder,
)
from engine.order import Anomaly, Order
from engine.states import OrderState, Refusal, Side

__all__ = [
    "Anomaly",
    "AnomalyKind",
    "CancelDecision",
    "CancelRefused",
    "CancelRequest",
    "EngineError",
    "EventDecodeError",
    "InvalidEvent",
    "InvalidTime",
    "ModifyRefused",
    "ModifyRequest",
    "Order",
    "OrderBook",
    "OrderState",
    "ParkingFull",
    "Refusal",
    "SessionCalendar",
    "Side",
    "UnknownOrder",
    "events",
    "parse_cancel_qty",
]
