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
    "STATES",
    "STATE_INDEX",
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

_LIVE = tuple(s for s in OrderState if s.is_open)
_TERMINAL = tuple(s for s in OrderState if s.is_terminal)

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
    ("amend", CANCELLED, CANCELLED),  # late modify: a cancel delivered first took its shares
    ("amend", CANCELLED, REPLACED),  # late modify took back every cancelled share
)


def build_machine() -> Machine:
    """Return the one ``transitions`` machine that declares the lifecycle (bound to no model)."""
    return Machine(
        model=None,
        states=[s.name for s in STATES],
        transitions=[
            {"trigger": trigger, "source": src.name, "dest": dst.name}
            for trigger, src, dst in EDGES
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
                found.add((trigger, OrderState[src], OrderState[str(transition.dest)]))
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


_CANCELLABLE = {
    RECEIVED: 'yes: L - P (all of it with `"0"`)',
    CONFIRMED: 'yes: L - P (all of it with `"0"`)',
    PARTIALLY_FILLED: "the unfilled rest: L - P; filled shares never",
    FILLED: "no (FULLY_FILLED)",
    CANCELLED: "no (ALREADY_CANCELLED)",
    REPLACED: "no (REPLACED: cancel the successor order)",
    REJECTED: "no (REJECTED)",
}

_WHEN = {
    RECEIVED: "L > 0, F == 0, not yet confirmed",
    CONFIRMED: "L > 0, F == 0, the exchange confirmed the order or a change to it",
    PARTIALLY_FILLED: "L > 0, F > 0",
    FILLED: "L == 0, F == Q",
    CANCELLED: "L == 0, C > 0 (possibly F > 0: partially filled, rest cancelled)",
    REPLACED: "L == 0, M > 0, C == 0, F < Q: the rest lives on in a successor order",
    REJECTED: "the broker refused the order; F == 0",
}


def render_lifecycle_doc(machine: Machine = MACHINE) -> str:
    """Return ``docs/lifecycle.md``: a mermaid diagram drawn by ``transitions``, a state table."""
    from transitions.extensions.diagrams import GraphMachine

    class _Diagram:
        """The one model the diagram machine draws (documentation only)."""

    edges = sorted(edges_of(machine), key=lambda e: (STATE_INDEX[e[1]], e[0], STATE_INDEX[e[2]]))
    drawer = GraphMachine(
        model=_Diagram(),
        states=[s.name for s in STATES],
        transitions=[{"trigger": t, "source": a.name, "dest": b.name} for t, a, b in edges],
        initial=machine.initial,
        auto_transitions=False,
        graph_engine="mermaid",
        title="Order lifecycle",
    )
    diagram = str(drawer.models[0].get_graph().draw(None))
    for state in STATES:  # show the Korean label beside each name
        diagram = diagram.replace(
            f'state "{state.name}" as {state.name}',
            f'state "{state.name} {state.value}" as {state.name}',
        )
    lines = [
        "# Order lifecycle",
        "",
        "<!-- Generated by `order-engine lifecycle-doc docs/lifecycle.md` from the transition",
        "     table in engine/lifecycle.py. Do not edit by hand: tests/test_lifecycle.py fails",
        "     when this file is out of date. -->",
        "",
        "Quantities come first and the state is derived from them (Q ordered, F filled,",
        "C cancelled, M moved to a successor by a modify, L still open, P reserved by pending",
        "cancels). `F + C + M + L == Q` after every event. An event that would take an order",
        "along an edge not drawn here is refused and the order is left exactly as it was.",
        "",
        "## States",
        "",
        "| state | Korean | when | cancellable |",
        "|---|---|---|---|",
    ]
    for state in STATES:
        lines.append(f"| {state.name} | {state.value} | {_WHEN[state]} | {_CANCELLABLE[state]} |")
    lines += [
        "",
        "FILLED, CANCELLED, REPLACED and REJECTED are terminal. A pending cancel is an overlay",
        "on a live state (`pending_cancel_qty > 0` or `cancel_all_pending`), not a state: a",
        "pending order keeps receiving fills.",
        "",
        "## Triggers",
        "",
        "| trigger | broker fact |",
        "|---|---|",
        "| confirm | 확인 of the order, or a report that it is open (ignored once terminal) |",
        "| fill | 체결; a fill beyond L takes shares back from C (late fill, an anomaly) |",
        "| cancel | a cancel confirmation: moves min(confirmed, L) from L to C |",
        "| expire | the venue cancelled the rest (IOC/FOK remainder, end of day): C += L |",
        "| reject | 거부 of the order, before any fill |",
        "| amend | 정정: shares move to a successor order (M) |",
        "",
        "## Reservations and unknown outcomes",
        "",
        "Requests move no shares; they reserve them. These policies sit beside the quantity",
        "rules above (the broker's facts move shares, the engine's requests only hold them):",
        "",
        "- **Cancel reservation.** `request_cancel` reserves n shares (P += n), or all that is",
        '  open for `"0"` (a cancel-all: nothing more is cancellable while it is pending). The',
        "  broker's confirmation or rejection releases the reservation.",
        "- **Modify reservation.** `request_modify` reserves the shares a pending modify (정정,",
        '  kt10002) is about to move, or all that is open for `"0"`. A cancel may take only',
        "  `L - P - (shares reserved by modifies)`, so it can never be allowed for shares a",
        "  pending modify is moving; the modify's amendment or rejection releases them.",
        "- **Unknown outcome.** When the answer to a cancel is lost (a timeout, a reset, a 5xx,",
        "  or a restart that finds a reserved request its process never saw answered), the",
        "  broker adapter records `CancelOutcomeUnknown`. The reservation stays, and **no new",
        "  cancel of that order is allowed (`OUTCOME_UNKNOWN`)** until a broker fact settles the",
        "  lost one on evidence: its number (it was received), its confirmation or rejection,",
        "  or a reconciliation that found no trace of it after a grace period. So asking",
        '  "cancel 4 shares" again after a crash can never cancel 8.',
        "- An answer merely not arrived yet (a request on the wire) is not unknown: other",
        "  shares of the order may still be cancelled meanwhile.",
        "",
        "## Diagram",
        "",
        f"{len(edges)} edges, self-loops included.",
        "",
        "```mermaid",
        diagram.rstrip(),
        "```",
        "",
    ]
    return "\n".join(lines)
