"""``order-engine simulate``: the README's main command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

from adapters.cli.main import main
from adapters.sim import Latency, Mismatch, Report, run_session
from engine import OrderBook, OrderState
from engine import events as ev

SMALL = ["--orders", "150", "--step-ms", "1000"]  # a day of 22,800 steps


def test_the_default_run_summarises_a_matching_session(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate"]) == 0
    out = capsys.readouterr().out
    for needle in (
        "seed 7, 500 orders on 005930, 000660, 035420",
        "전량체결 FILLED",
        "취소     CANCELLED",
        "Shares:",
        "refused by the engine (never sent)",
        "Races observed",
        "FILL_DURING_CANCEL",
        "Engine view == exchange truth: MATCHED",
    ):
        assert needle in out, needle
    assert "refused FULLY_FILLED" in out or "refused ALREADY_CANCELLED" in out


def test_json_has_the_promised_keys_and_agrees_with_itself(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["simulate", "--json", *SMALL, "--seed", "11"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"orders", "events", "states", "cancels", "races", "anomalies", "mismatches"} <= set(
        data
    )
    assert data["ok"] is True and data["mismatches"] == []
    assert sum(data["states"].values()) == data["orders"] >= 150
    assert set(data["states"]) <= {s.name for s in OrderState}
    cancels = data["cancels"]
    assert cancels["requested"] == cancels["allowed"] + sum(cancels["refused"].values())
    assert data["config"]["seed"] == 11


def test_no_latency_no_races(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--json", *SMALL, "--latency-ms", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["races"] == {}


def test_events_out_replays_into_an_identical_book(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.jsonl"
    args = ["simulate", *SMALL, "--seed", "5", "--reorder", "--latency-ms", "0-300"]
    assert main([*args, "--events-out", str(path)]) == 0
    capsys.readouterr()
    lines = path.read_text(encoding="utf-8").splitlines()
    replayed = OrderBook.replay(ev.from_dict(json.loads(line)) for line in lines)
    harness, _ = run_session(
        seed=5,
        orders=150,
        latency=Latency.uniform("0-300", reorder=True),
        journal=False,
        step_ms=1000,
    )
    assert len(replayed) == len(harness.book) > 150
    assert replayed.snapshot() == harness.book.snapshot()


def test_the_same_seed_writes_the_same_bytes(tmp_path: Path) -> None:
    def run(seed: str, name: str) -> bytes:
        path = tmp_path / name
        assert main(["simulate", "--json", *SMALL, "--seed", seed, "--events-out", str(path)]) == 0
        return path.read_bytes()

    first = run("3", "a.jsonl")
    assert first == run("3", "b.jsonl")
    assert first != run("4", "c.jsonl")


@pytest.mark.parametrize(
    "bad",
    [
        ["--orders", "0"],
        ["--orders", "many"],
        ["--latency-ms", "fast"],
        ["--latency-ms", "300-5"],
        ["--symbols", "005930,12"],
        ["--symbols", "005930,005930"],
        ["--seed", "x"],
        ["--symbols", "００５９３０"],  # full-width digits are not a stock code
        ["--latency-ms", "0-100000"],  # more than a minute a channel
    ],
)
def test_bad_options_exit_2_with_a_message(
    bad: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["simulate", *bad])
    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_an_unwritable_events_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "missing" / "events.jsonl"
    assert main(["simulate", *SMALL, "--events-out", str(target)]) == 2
    assert "cannot write" in capsys.readouterr().err


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_an_events_file_that_fills_up_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", *SMALL, "--events-out", "/dev/full"]) == 2
    assert "cannot write /dev/full" in capsys.readouterr().err


def test_json_is_the_same_bytes_for_the_same_seed(capsys: pytest.CaptureFixture[str]) -> None:
    outputs = []
    for _ in range(2):
        assert main(["simulate", "--json", *SMALL, "--seed", "2"]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    assert "seconds" not in json.loads(outputs[0])


def test_the_progress_bar_goes_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", *SMALL, "--progress", "always"]) == 0
    captured = capsys.readouterr()
    assert "150/150 orders" in captured.err
    assert "orders" not in captured.out.splitlines()[-1] or "MATCHED" in captured.out


def test_other_symbols_and_sessions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--json", *SMALL, "--symbols", "051910", "--sessions"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["config"]["symbols"] == ["051910"] and data["ok"]


def test_a_mismatch_fails_the_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from adapters.cli import simulate

    real = simulate.run_session

    def broken(**kwargs: object) -> tuple[object, Report]:
        harness, report = real(**kwargs)  # type: ignore[arg-type]
        bad = Mismatch("0000001", "filled_qty", 1, 2)
        return harness, attrs.evolve(report, mismatches=[bad])

    monkeypatch.setattr(simulate, "run_session", broken)
    assert main(["simulate", *SMALL]) == 1
    out = capsys.readouterr().out
    assert "Engine view != exchange truth: 1 differences" in out
    assert "0000001: filled_qty engine=1 exchange=2" in out


def test_console_script_runs_simulate_offline() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "adapters.cli.main", "simulate", *SMALL, "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ok"] is True


def test_the_progress_bar_follows_the_simulated_clock(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", *SMALL, "--progress", "always"]) == 0
    err = capsys.readouterr().err
    assert "simulated 100%" in err and "KST" in err
    assert "09:" in err  # the simulated clock, from the morning on
    assert main(["simulate", *SMALL, "--progress", "never"]) == 0
    assert capsys.readouterr().err == ""
