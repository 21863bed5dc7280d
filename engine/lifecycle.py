"""The legal state changes of an order, declared once with ``transitions`` and compiled.

The declaration below is the single source of truth. It is loaded into one
``transitions.Machine(model=None, auto_transitions=False)`` (never bound to orders: that costs
about 13 KB and 0.25 ms per order), and compiled once into :data:`ALLOWED`, a tuple of bitmasks
that the hot path reads with two index operations. ``tests/test_lifecycle.py`` proves the table
and the machine agree, and ``docs/lifecycle.md`` is drawn from the same machine.

Triggers are the broker facts that move quantities:

``confirm``  확인 of the order (or an "open" status report)
``fill``     체결
``cancel``   a cancel confirmation (취소 확인)
``expire``   the venue cancelled the rest itself (IOC/FOK remainder, expiry)
``reject``   거부 of the order
``amend``    정정: shares moved to a successor order

Reservation events (cancel requested, accepted, rejected) move no quantity and so take no edge.
"""

from __future__ import annotations

from typing import Final

from transitions import Machine

from engine.states import OrderState

__all__ = [
    "ALLOWED",
    "EDGES",
    "STATE_INDEX",
    "STATES",
    "TRIGGERS",
    "build_machine",
    "compile_machine",
    "edges_of",
]

RECEIVED = OrderState.RECEIVED
CONFIRMED = OrderState.CONFIRMED
PARTIALLY_FILLED = OrderState.PARTIALLY_FILLED
FILLED = OrderState.FILLED
CANCELLED = OrderState.CANCELLED
REPLACED = OrderState.REPLACED
REJECTED = OrderState.REJECTED

#: Order of states; an order stores its state as an index into this tuple.
STATES: Final[tuple[OrderState, ...]] = tuple(OrderState)
STATE_INDEX: Final[dict[OrderState, int]] = {s: i for i, s in enumerate(STATES)}

#: Order of triggers; the engine refers to them by index.
TRIGGERS: Final[tuple[str, ...]] = ("confirm", "fill", "cancel", "expire", "reject", "amend")
CONFIRM, FILL, CANCEL, EXPIRE, REJECT, AMEND = range(len(TRIGGERS))

_LIVE = (RECEIVED, CONFIRMED, PARTIALLY_FILLED)
_TERMINAL = (FILLED, CANCELLED, REPLACED, REJECTED)

#: One line per legal edge: (trigger, source, destination). Self-loops are edges too.
EDGES: Final[tuple[tuple[str, OrderState, OrderState], ...]] = (
    # 확인
    ("confirm", RECEIVED, CONFIRMED),
    ("confirm", CONFIRMED, CONFIRMED),
    ("confirm", PARTIALLY_FILLED, PARTIALLY_FILLED),  # a confirmation overtaken by a fill
    *(("confirm", s, s) for s in _TERMINAL),  # stale 확인 after the end: ignored, L stays 0
    # 체결
    ("fill", RECEIVED, PARTIALLY_FILLED),  # real world possibility: fill before 확인
    ("fill", RECEIVED, FILLED),
    ("fill", CONFIRMED, PARTIALLY_FILLED),
    ("fill", CONFIRMED, FILLED),
    ("fill", CONFIRMED, CANCELLED),  # partially cancelled earlier, the rest now filled
    ("fill", CONFIRMED, REPLACED),  # partially modified earlier, the rest now filled
    ("fill", PARTIALLY_FILLED, PARTIALLY_FILLED),
    ("fill", PARTIALLY_FILLED, FILLED),
    ("fill", PARTIALLY_FILLED, CANCELLED),
    ("fill", PARTIALLY_FILLED, REPLACED),
    ("fill", CANCELLED, CANCELLED),  # late fill: executed before the cancel, moves C to F
    ("fill", CANCELLED, FILLED),  # late fills took every cancelled share: it was all filled
    ("fill", CANCELLED, REPLACED),  # late fills took every cancelled share of a modified order
    # 취소 확인
    ("cancel", RECEIVED, CONFIRMED),  # a partial cancel confirms the order
    ("cancel", RECEIVED, CANCELLED),
    ("cancel", CONFIRMED, CONFIRMED),
    ("cancel", CONFIRMED, CANCELLED),
    ("cancel", PARTIALLY_FILLED, PARTIALLY_FILLED),
    ("cancel", PARTIALLY_FILLED, CANCELLED),
    *(("cancel", s, s) for s in _TERMINAL),  # a confirmation that lost the race cancels nothing
    # venue-side cancel of the rest
    *(("expire", s, CANCELLED) for s in _LIVE),
    *(("expire", s, s) for s in _TERMINAL),  # nothing open: ignored
    # 거부 (only before any fill)
    ("reject", RECEIVED, REJECTED),
    ("reject", CONFIRMED, REJECTED),  # real world possibility: the venue rejects after 확인
    ("reject", REJECTED, REJECTED),
    # 정정
    ("amend", RECEIVED, CONFIRMED),  # part of the order moved, the rest confirmed
    ("amend", RECEIVED, REPLACED),
    ("amend", CONFIRMED, CONFIRMED),
    ("amend", CONFIRMED, REPLACED),
    ("amend", PARTIALLY_FILLED, PARTIALLY_FILLED),
    ("amend", PARTIALLY_FILLED, REPLACED),
    ("amend", PARTIALLY_FILLED, CANCELLED),  # partially cancelled earlier, the rest moved
    ("amend", CONFIRMED, CANCELLED),
)


def build_machine() -> Machine:
    """Return the one ``transitions`` machine that declares the lifecycle (bound to no model)."""
    return Machine(
        model=None,
        states=[s.name for s in STATES],
        transitions=[
            {"trigger": trigger, "source": src.name, "dest": dst.name} for trigger, src, dst in EDGES
        ],
        initial=RECEIVED.name,
        auto_transitions=False,
    )


def edges_of(machine: Machine) -> set[tuple[str, OrderState, OrderState]]:
    """Return every (trigger, source, destination) edge the machine knows."""
    found: set[tuple[str, OrderState, OrderState]] = set()
    for trigger, event in machine.events.items():
        for src, transitions in event.transitions.items():
            for transition in transitions:
                found.add((trigger, OrderState[src], OrderState[transition.dest]))
    return found


def compile_machine(machine: Machine) -> tuple[tuple[int, ...], ...]:
    """Compile the machine into ``table[trigger][source]``: a bitmask of allowed destinations."""
    masks = [[0] * len(STATES) for _ in TRIGGERS]
    for trigger, src, dst in edges_of(machine):
        masks[TRIGGERS.index(trigger)][STATE_INDEX[src]] |= 1 << STATE_INDEX[dst]
    return tuple(tuple(row) for row in masks)


#: The machine declared once for the whole process.
MACHINE: Final[Machine] = build_machine()

#: ``ALLOWED[trigger][source] >> destination & 1`` says whether an edge exists.
ALLOWED: Final[tuple[tuple[int, ...], ...]] = compile_machine(MACHINE)
