"""The command line's first-hour edges: --version, logging, pipes, usage errors, ``place``.

Against the Kiwoom simulator on loopback (real HTTP); the console script in a subprocess where
the process itself matters (a pipe closed early, logging set up by ``main``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

import pytest

import adapters.cli.simulate as simulate_cli
import engine
from adapters.cli.kiwoom_cli import EXIT
from adapters.cli.main import EXIT_BROKEN_PIPE, main
from adapters.kiwoom.simserver import SimServer

APPKEY = "newcomer-appkey-5a7b"
SECRET = "newcomer-secret-3c9d"
EXE = shutil.which("order-engine") or ""


@pytest.fixture
def server() -> Iterator[SimServer]:
    with SimServer(seed=5, rate=None, market=False) as srv:
        yield srv


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIWOOM_APPKEY", APPKEY)
    monkeypatch.setenv("KIWOOM_SECRETKEY", SECRET)


def closed_port_url() -> str:
    """A loopback URL on which nothing listens (a port bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def run(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    assert EXE, "the order-engine console script is not installed (pip install -e .)"
    return subprocess.run(
        [EXE, *argv], capture_output=True, text=True, check=False, timeout=timeout
    )


# -- --version, usage errors -------------------------------------------------------------------
def test_version_is_the_distributions(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"order-engine {engine.__version__}"
    assert version("kiwoom-order-engine") == engine.__version__


def test_lifecycle_doc_check_without_a_file_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["lifecycle-doc", "--check"])
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # the document is not printed
    assert "--check needs the file" in captured.err


# -- pipes closed early ------------------------------------------------------------------------
@pytest.mark.parametrize("command", [["simulate", "--orders", "50", "--step-ms", "2000"], ["demo"]])
def test_a_reader_that_goes_away_ends_the_command_quietly(command: list[str]) -> None:
    assert EXE
    process = subprocess.Popen([EXE, *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # `| head` that read nothing: every write meets a closed pipe
    err = process.stderr.read().decode()
    assert process.wait(timeout=120) == EXIT_BROKEN_PIPE
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert err == ""


def test_head_reads_the_first_lines_and_the_command_ends_quietly() -> None:
    assert EXE
    done = subprocess.run(
        f"'{EXE}' demo | head -n 1",
        shell=True,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.stdout.startswith("order-engine demo:")
    assert "Traceback" not in done.stderr


# -- logging -----------------------------------------------------------------------------------
def test_verbose_turns_on_the_librarys_logging_without_secrets(server: SimServer) -> None:
    quiet = run("open-orders", "--base-url", server.base_url)
    assert quiet.returncode == 0, quiet.stderr
    assert all(line.startswith("journal:") for line in quiet.stderr.splitlines()), quiet.stderr
    assert "DEBUG" not in quiet.stderr and "INFO" not in quiet.stderr
    loud = run("-vv", "open-orders", "--base-url", server.base_url)
    assert loud.returncode == 0, loud.stderr
    assert "DEBUG adapters.kiwoom" in loud.stderr
    assert "0 open order(s)" in loud.stdout
    for secret in (APPKEY, SECRET):
        assert secret not in loud.stderr
    info = run("--log-level", "warning", "open-orders", "--base-url", server.base_url)
    assert info.returncode == 0 and "DEBUG" not in info.stderr
    after = run("open-orders", "-vv", "--base-url", server.base_url)  # after the command too
    assert after.returncode == 0 and "DEBUG adapters.kiwoom" in after.stderr


# -- cancel: checked before any network call; a refused connection in one line -------------------
@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--ord-no", "140"),
        ("--ord-no", "00001400"),
        ("--ord-no", "abcdefg"),
        ("--ord-no", "０００００１４"),  # full-width digits are not an order number
        ("--stk-cd", "KRX:005930"),
        ("--stk-cd", "12345"),
        ("--stk-cd", "0059300"),
    ],
)
def test_cancel_checks_its_options_before_any_call(
    server: SimServer, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    argv = {"--ord-no": "0000001", "--stk-cd": "005930", option: value}
    with pytest.raises(SystemExit) as exit_:
        main(["cancel", *[x for kv in argv.items() for x in kv], "--base-url", server.base_url])
    assert exit_.value.code == EXIT["usage"]
    assert option in capsys.readouterr().err
    assert sum(server.calls.values()) == 0  # not even a token was asked for


@pytest.mark.parametrize("command", ["cancel", "open-orders", "place"])
def test_a_refused_connection_says_cannot_connect_in_one_line(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    url = closed_port_url()
    extra = {
        "cancel": ["--ord-no", "0000001", "--stk-cd", "005930"],
        "open-orders": [],
        "place": ["buy", "--stk-cd", "005930", "--qty", "1", "--price", "50000"],
    }[command]
    assert main([command, *extra, "--base-url", url]) == EXIT["failed"]
    err = capsys.readouterr().err
    assert "Max retries" not in err
    # the one error line (a "journal:" line may say where the account's book is kept)
    errors = [line for line in err.splitlines() if not line.startswith("journal:")]
    assert errors == [errors[0]] and f"cannot connect to {url}" in errors[0], err


# -- place -------------------------------------------------------------------------------------
def test_place_then_open_orders_then_cancel(
    server: SimServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = server.base_url
    argv = ["place", "buy", "--stk-cd", "005930", "--qty", "10", "--price", "50,000"]
    assert main([*argv, "--base-url", url]) == EXIT["accepted"]
    out = capsys.readouterr().out
    assert out.startswith("placed:   order ")
    ord_no = out.split()[2].rstrip(":")
    assert len(ord_no) == 7 and ord_no.isdigit()
    assert server.calls["kt10000"] == 1
    truth = server.truth(ord_no)
    assert (truth.qty, truth.price) == (10, 50_000)

    assert main(["open-orders", "--base-url", url]) == 0
    listing = capsys.readouterr().out
    assert ord_no in listing and "1 open order(s)" in listing

    cancel = ["cancel", "--ord-no", ord_no, "--stk-cd", "005930", "--qty", "4"]
    assert main([*cancel, "--base-url", url]) == EXIT["accepted"]
    assert "accepted" in capsys.readouterr().out
    assert server.calls["kt10003"] == 1


def test_place_a_sell_at_market(server: SimServer, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["place", "sell", "--stk-cd", "000660", "--qty", "3", "--market"]
    status = main([*argv, "--base-url", server.base_url])
    out = capsys.readouterr().out
    assert server.calls["kt10001"] == 1
    assert "at market" in out
    assert status in (EXIT["accepted"], EXIT["rejected"]), out
    entry = next(e for e in server.log if e.api_id == "kt10001")
    assert entry.body["trde_tp"] == "3" and entry.body["ord_uv"] == ""


@pytest.mark.parametrize(
    "bad",
    [
        ["buy", "--stk-cd", "005930", "--qty", "0", "--price", "50000"],
        ["buy", "--stk-cd", "005930", "--qty", "1.5", "--price", "50000"],
        ["buy", "--stk-cd", "005930", "--qty", "10"],  # neither --price nor --market
        ["buy", "--stk-cd", "005930", "--qty", "10", "--price", "50000", "--market"],
        ["buy", "--stk-cd", "005930", "--qty", "10", "--price", "0"],
        ["buy", "--stk-cd", "005930", "--qty", "10", "--price", "-5"],
        ["hold", "--stk-cd", "005930", "--qty", "10", "--price", "50000"],
        ["buy", "--stk-cd", "A0059", "--qty", "10", "--price", "50000"],
    ],
)
def test_place_refuses_bad_options_before_any_call(server: SimServer, bad: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["place", *bad, "--base-url", server.base_url])
    assert exit_.value.code == EXIT["usage"]
    assert sum(server.calls.values()) == 0


class Closed:
    """A session calendar under which the market never accepts anything (RC4057/RC4058)."""

    def accepts_cancel(self, exchange: str, at: datetime) -> bool:
        return False


def test_place_reports_a_rejection(capsys: pytest.CaptureFixture[str]) -> None:
    with SimServer(seed=5, rate=None, market=False, sessions=Closed()) as closed:
        argv = ["place", "buy", "--stk-cd", "005930", "--qty", "10", "--price", "50000"]
        status = main([*argv, "--base-url", closed.base_url])
        assert closed.calls["kt10000"] == 1
    out = capsys.readouterr().out
    assert status == EXIT["rejected"], out
    assert out.startswith("rejected: buy 10 005930 at 50,000: RC405")


# -- --events-out: a large file is announced ---------------------------------------------------
def test_the_events_file_size_estimate_holds(tmp_path: Path) -> None:
    path = tmp_path / "day.jsonl"
    assert (
        main(["simulate", "--orders", "300", "--step-ms", "1000", "--events-out", str(path)]) == 0
    )
    per_order = path.stat().st_size / 300
    assert 0.8 < per_order / simulate_cli.EVENT_BYTES_PER_ORDER < 1.25, per_order


def test_a_large_events_file_is_announced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    small = ["simulate", "--orders", "100", "--step-ms", "2000"]
    assert main([*small, "--events-out", str(tmp_path / "a.jsonl")]) == 0
    assert "warning" not in capsys.readouterr().err  # 80 kB: nothing to say
    monkeypatch.setattr(simulate_cli, "WARN_EVENTS_BYTES", 50_000)
    assert main([*small, "--events-out", str(tmp_path / "b.jsonl")]) == 0
    err = capsys.readouterr().err
    assert "warning: " in err and str(tmp_path / "b.jsonl") in err and " MB (800 bytes" in err
    assert "journal=False" in err


def test_python_m_runs_the_same_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "adapters.cli.main", "--version"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ},
    )
    assert done.returncode == 0 and done.stdout.strip() == f"order-engine {engine.__version__}"
