"""``order-engine sweep``: days over a grid on a real Dask cluster (one shared per module)."""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

distributed = pytest.importorskip("distributed", reason="the [sweep] extra is not installed")
pd = pytest.importorskip("pandas", reason="the [sweep] extra is not installed")

import cloudpickle  # noqa: E402

from adapters.cli.main import main  # noqa: E402
from adapters.sweep import (  # noqa: E402
    Params,
    aggregate,
    grid,
    parse_seeds,
    rows_frame,
    run_day,
    run_serial,
    run_sweep,
)

# Small, fast days: 20 orders, a bar every 5 s (4,560 steps).
SMALL = ["--orders", "20", "--step-ms", "5000"]
SETS = grid({"orders": [20], "step_ms": [5000], "latency": ["0", "5-150"], "reorder": [True]})
SEEDS = (1, 2, 3, 4)

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # no fixed port: others may run clusters here
        silence_logs=logging.ERROR,
    ) as local:
        yield local


@pytest.fixture(scope="module")
def client(cluster: Any) -> Iterator[Any]:
    with distributed.Client(cluster) as c:
        yield c


def test_seeds_are_read_as_ranges_and_lists() -> None:
    assert parse_seeds("1-4") == (1, 2, 3, 4)
    assert parse_seeds("1,5,9") == (1, 5, 9)
    assert parse_seeds("1-3,10") == (1, 2, 3, 10)
    for bad in ("", "x", "5-1", "1,1", "1-2,2", "1-2000000"):
        with pytest.raises(ValueError):
            parse_seeds(bad)


def test_a_grid_is_the_product_of_the_lists_and_checks_its_values() -> None:
    sets = grid({"latency": ["0", "5-150"], "reorder": [False, True]})
    assert [(p.latency_text, p.reorder) for p in sets] == [
        ("0", False),
        ("0", True),
        ("5-150", False),
        ("5-150", True),
    ]
    with pytest.raises(ValueError, match="unknown sweep parameters: latncy"):
        grid({"latncy": ["0"]})
    with pytest.raises(ValueError):
        Params(orders=0)
    with pytest.raises(ValueError):
        Params(symbols=("KRX:005930",))
    with pytest.raises(ValueError, match="at most 60,000 ms"):
        Params(latency="5-70000")


def test_a_day_is_the_simulate_day_its_command_names(capsys: pytest.CaptureFixture[str]) -> None:
    params = SETS[1]
    row = run_day(5, params)
    assert row["status"] == "ok"
    words = shlex.split(params.command(5))
    assert words[:2] == ["order-engine", "simulate"]
    assert main([*words[1:], "--json"]) == 0
    alone = json.loads(capsys.readouterr().out)
    assert alone["orders"] == row["orders"] and alone["events"] == row["events"]
    assert alone["races"] == {k[5:]: v for k, v in row.items() if k.startswith("race_") and v}
    assert alone["cancels"]["refused"] == {
        k[8:]: v for k, v in row.items() if k.startswith("refused_") and v
    }


def test_aggregates_are_the_same_on_the_cluster_as_in_a_plain_loop(client: Any) -> None:
    serial = aggregate(run_serial(SEEDS, SETS), SETS)
    done = run_sweep(SEEDS, SETS, client=client)
    assert not done.interrupted and len(done.rows) == len(SEEDS) * len(SETS)
    assert aggregate(done.rows, SETS) == serial
    assert serial["days"] == 8 and serial["mismatches"] == 0 and serial["failures"] == []
    assert serial["races"]  # the latency set has races; latency 0 with reorder has none
    zero, late = serial["param_sets"]
    assert sum(r["total"] for r in zero["races"].values()) == 0
    assert late["races"]["FILL_DURING_CANCEL"]["total"] > 0
    assert 0 < late["fill_ratio"] < 1 and 0 < late["cancel_ratio"] <= 1


def _faulty_day(seed: int, params: Params, timeout: float | None = None) -> dict[str, Any]:
    """A day that crashes for seed 2 and disagrees with the exchange for seed 3."""
    if seed == 2:
        raise RuntimeError("a broken day")
    row = run_day(seed, params, timeout)
    if seed == 3:
        row.update(status="mismatch", mismatches=1, error="0000001: state engine=X exchange=Y")
    return row


def test_failed_days_are_reported_with_the_command_and_the_sweep_goes_on(client: Any) -> None:
    done = run_sweep(SEEDS, SETS[:1], client=client, day=_faulty_day)
    summary = aggregate(done.rows, SETS[:1])
    assert summary["days"] == 4 and summary["failed"] == 1 and summary["mismatches"] == 1
    failures = {f["seed"]: f for f in summary["failures"]}
    assert set(failures) == {2, 3}
    assert failures[2]["status"] == "error" and "a broken day" in failures[2]["error"]
    assert failures[3]["status"] == "mismatch"
    assert failures[3]["command"] == SETS[0].command(3)
    assert "--seed 3 " in failures[3]["command"] and "--reorder" in failures[3]["command"]


def _sweep(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(["sweep", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_on_an_existing_scheduler_json_and_rows_out(
    cluster: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "days.parquet"
    grid_args = [*SMALL, "--latency-ms", "0", "--latency-ms", "5-150", "--reorder"]
    status, text, _ = _sweep(
        [
            "--seeds",
            "1-4",
            *grid_args,
            "--scheduler",
            cluster.scheduler_address,
            "--json",
            "--out",
            str(out),
        ],
        capsys,
    )
    assert status == 0
    data = json.loads(text)
    assert {"days", "mismatches", "races", "param_sets", "failures"} <= set(data)
    assert data["days"] == 8 and data["mismatches"] == 0
    assert data == {"seeds": 4, **aggregate(run_serial(SEEDS, SETS), SETS)}
    frame = pd.read_parquet(out)
    assert len(frame) == 8 and list(frame["seed"]) == [1, 2, 3, 4] * 2
    assert str(frame["status"].dtype) == "category" and set(frame["status"]) == {"ok"}
    assert frame["race_FILL_DURING_CANCEL"].sum() == data["races"]["FILL_DURING_CANCEL"]
    csv = tmp_path / "days.csv"
    status, text, _ = _sweep(
        ["--seeds", "1,2", *SMALL, "--scheduler", cluster.scheduler_address, "--out", str(csv)],
        capsys,
    )
    assert status == 0 and "every day MATCHED" in text and "[0] orders 20" in text
    assert len(pd.read_csv(csv)) == 2


def test_a_timed_out_day_fails_the_sweep_with_its_command(
    cluster: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    status, text, err = _sweep(
        [
            "--seeds",
            "1,2",
            *SMALL,
            "--scheduler",
            cluster.scheduler_address,
            "--day-timeout",
            "0.0001",
        ],
        capsys,
    )
    assert status == 1
    assert "2 days FAILED" in text
    assert "day failed (timeout): seed 1" in err
    assert "reproduce: order-engine simulate --seed 1 --orders 20" in err


def test_a_grid_file_and_one_embedded_worker_give_the_same_aggregates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "grid.toml"
    spec.write_text(
        'seeds = "1-4"\norders = 20\nstep_ms = 5000\nlatency = ["0", "5-150"]\nreorder = true\n',
        encoding="utf-8",
    )
    status, text, _ = _sweep(["--grid", str(spec), "--workers", "1", "--json"], capsys)
    assert status == 0
    assert json.loads(text) == {"seeds": 4, **aggregate(run_serial(SEEDS, SETS), SETS)}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--seeds", "5-1"], "reversed"),
        (["--out", "days.txt"], ".parquet or .csv"),
        (["--grid", "grid.yaml"], ".toml or .json"),
        (["--latency-ms", "70000"], "at most 60,000 ms"),
    ],
)
def test_bad_options_are_refused_before_anything_runs(
    args: list[str],
    needle: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "grid.yaml").write_text("orders: 5\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    try:
        status = main(["sweep", *args])
    except SystemExit as exc:  # argparse's own usage errors
        status = int(exc.code or 0)
    assert status == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "days.txt").exists()


def test_without_the_extra_the_message_names_it() -> None:
    code = (
        "import sys; sys.modules['distributed'] = None\n"
        "from adapters.cli.main import main\n"
        "raise SystemExit(main(['sweep', '--seeds', '1']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "order-engine sweep needs the [sweep] extra: pip install 'kiwoom-order-engine[sweep]'"
    )


def test_ctrl_c_stops_the_sweep_and_its_cluster(tmp_path: Path) -> None:
    psutil = pytest.importorskip("psutil")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "adapters.cli.main",
            "sweep",
            "--seeds",
            "1-400",
            "--orders",
            "50",
            "--workers",
            "1",
            "--progress",
            "always",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a shell gives a command
    )
    try:
        parent = psutil.Process(proc.pid)
        deadline = time.monotonic() + 60
        children: list[Any] = []
        while time.monotonic() < deadline and len(children) < 2:  # nanny and worker started
            time.sleep(0.2)
            children = parent.children(recursive=True)
        assert children, "the local cluster never started"
        time.sleep(1.0)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole group, workers too
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "cluster is stopped" in err
    assert "sweep:" in err and "/400" in err  # the progress bar: days done of all
    _, alive = psutil.wait_procs(children, timeout=15)
    assert not alive, f"left running: {alive}"


def test_rows_frame_has_one_typed_row_per_day() -> None:
    rows = run_serial((1, 2), SETS[1:])
    frame = rows_frame(rows)
    assert list(frame["seed"]) == [1, 2]
    assert frame["race_EARLY_EVENT"].dtype == "int64"
    assert str(frame["status"].dtype) == "category"
