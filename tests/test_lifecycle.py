"""The transition table: declared once with transitions, compiled, drawn into the docs."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.cli.main import main as cli
from engine.lifecycle import (
    ALLOWED,
    EDGES,
    MACHINE,
    STATE_INDEX,
    STATES,
    TRIGGERS,
    build_machine,
    compile_machine,
    edges_of,
    render_lifecycle_doc,
)
from engine.states import OrderState

DOC = Path(__file__).resolve().parent.parent / "docs" / "lifecycle.md"


def test_compiled_table_agrees_with_the_machine_edge_for_edge() -> None:
    """Every (trigger, source, destination) is allowed by the table iff the machine has it."""
    machine_edges = edges_of(MACHINE)
    for t, trigger in enumerate(TRIGGERS):
        for src in STATES:
            dests = set(MACHINE.get_transitions(trigger=trigger, source=src.name))
            machine_dests = {OrderState[tr.dest] for tr in dests}
            for dst in STATES:
                in_table = bool((ALLOWED[t][STATE_INDEX[src]] >> STATE_INDEX[dst]) & 1)
                assert in_table == (dst in machine_dests), (trigger, src, dst)
                assert in_table == ((trigger, src, dst) in machine_edges)


def test_machine_holds_exactly_the_declared_edges_and_no_auto_transitions() -> None:
    assert edges_of(MACHINE) == set(EDGES)
    assert set(MACHINE.events) == set(TRIGGERS)
    assert not any(name.startswith("to_") for name in MACHINE.events)
    assert MACHINE.models == []  # never bound to orders


def test_compiling_a_changed_machine_changes_the_table() -> None:
    """The comparison above can fail: a machine with one edge removed compiles differently."""
    machine = build_machine()
    machine.remove_transition("fill", source="CANCELLED", dest="FILLED")
    table = compile_machine(machine)
    assert table != ALLOWED
    fill = TRIGGERS.index("fill")
    cancelled, filled = STATE_INDEX[OrderState.CANCELLED], STATE_INDEX[OrderState.FILLED]
    assert not (table[fill][cancelled] >> filled) & 1
    assert (ALLOWED[fill][cancelled] >> filled) & 1


@pytest.mark.parametrize("state", [s for s in OrderState if s.is_terminal])
def test_terminal_states_never_lead_back_to_a_live_state(state: OrderState) -> None:
    live = {OrderState.RECEIVED, OrderState.CONFIRMED, OrderState.PARTIALLY_FILLED}
    assert not any(src is state and dst in live for _, src, dst in EDGES)


def test_rejected_is_reached_only_before_any_fill() -> None:
    sources = {src for trigger, src, dst in EDGES if dst is OrderState.REJECTED}
    assert sources == {OrderState.RECEIVED, OrderState.CONFIRMED, OrderState.REJECTED}


def test_korean_labels_are_the_enum_values() -> None:
    assert OrderState("부분체결") is OrderState.PARTIALLY_FILLED
    assert [s.value for s in STATES] == [
        "접수",
        "확인",
        "부분체결",
        "전량체결",
        "취소",
        "정정",
        "거부",
    ]


def test_lifecycle_doc_is_up_to_date() -> None:
    """docs/lifecycle.md is generated: run `order-engine lifecycle-doc docs/lifecycle.md`."""
    assert DOC.read_text(encoding="utf-8") == render_lifecycle_doc(), (
        "docs/lifecycle.md is out of date: run order-engine lifecycle-doc docs/lifecycle.md"
    )


def test_lifecycle_doc_draws_every_edge_and_labels_every_state() -> None:
    text = render_lifecycle_doc()
    assert "```mermaid" in text and "stateDiagram-v2" in text
    for state in STATES:
        assert f'state "{state.name} {state.value}" as {state.name}' in text
        assert f"| {state.name} | {state.value} |" in text
    for trigger, src, dst in EDGES:
        line = next(
            ln for ln in text.splitlines() if ln.strip().startswith(f"{src.name} --> {dst.name}:")
        )
        assert trigger in line


def test_lifecycle_doc_check_flags_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "lifecycle.md"
    stale.write_text("old\n", encoding="utf-8")
    assert cli(["lifecycle-doc", str(stale), "--check"]) == 1
    assert cli(["lifecycle-doc", str(stale)]) == 0
    assert cli(["lifecycle-doc", str(stale), "--check"]) == 0
    assert stale.read_text(encoding="utf-8") == render_lifecycle_doc()
