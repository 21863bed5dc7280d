"""docs/engine.md, docs/cli.md and the README's command-line path do what they say.

The Python blocks of docs/engine.md run as written (in a folder where ``order-engine simulate
--events-out day.jsonl`` has just written its file). The shell path of the README and of
docs/cli.md (place, open-orders, cancel) runs against a real ``order-engine sim-server`` in its
own process, on loopback. Every command of ``order-engine`` is documented in docs/cli.md.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PORT_URL = "http://127.0.0.1:8765"


def blocks(path: Path, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


@functools.cache
def commands() -> frozenset[str]:
    """The sub-commands ``order-engine --help`` lists."""
    done = subprocess.run(
        [sys.executable, "-m", "adapters.cli.main", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    match = re.search(r"\{([a-z,-]+)\}", done.stdout)
    assert match is not None, done.stdout
    return frozenset(match[1].split(","))


def test_the_engine_page_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert (
        main(["simulate", "--orders", "60", "--step-ms", "2000", "--events-out", "day.jsonl"]) == 0
    )
    capsys.readouterr()
    code = blocks(DOCS / "engine.md", "python")
    assert len(code) >= 3
    for block in code:
        exec(compile(block, "docs/engine.md", "exec"), {"__name__": "docs_engine"})
    printed = capsys.readouterr().out
    assert re.search(r"^\d+ orders; \d+ shares filled$", printed, re.MULTILINE), printed


def test_every_command_is_documented_in_cli_md() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    table = set(re.findall(r"^\| `([a-z-]+)` \|", text, re.MULTILINE))
    known = commands()
    assert {"simulate", "place", "cancel", "open-orders", "sim-server", "demo"} <= known
    assert known <= table, known - table


@pytest.fixture
def sim_server() -> Iterator[str]:
    exe = shutil.which("order-engine")
    assert exe, "the order-engine console script is not installed (pip install -e .)"
    process = subprocess.Popen(
        [exe, "sim-server", "--port", "0", "--no-market"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def run_path(block: str, url: str) -> list[subprocess.CompletedProcess[str]]:
    """Run the order-engine lines of a shell block against ``url``; return what each did."""
    env = {**os.environ, "KIWOOM_APPKEY": "any", "KIWOOM_SECRETKEY": "any"}
    known = commands()
    results = []
    for raw in block.strip().splitlines():
        line = raw.split("  #", 1)[0].strip()
        if line.startswith("export "):
            continue  # the credentials, set in env above
        # the documented port becomes the fixture's (for the REST and the WebSocket URLs alike)
        argv = shlex.split(
            line.replace(PORT_URL.removeprefix("http://"), url.removeprefix("http://"))
        )
        assert argv[0] == "order-engine", line
        if argv[1] == "sim-server":
            continue  # the fixture runs it
        if argv[1] not in known:  # `watch` comes with the real-time feed: run once it exists
            assert argv[1] == "watch", line
            continue
        if argv[1] == "watch":
            argv = [a if a != "10" else "1" for a in argv]  # a second of watching is enough
        exe = shutil.which("order-engine") or "order-engine"
        done = subprocess.run(
            [exe, *argv[1:]], capture_output=True, text=True, check=False, timeout=120, env=env
        )
        assert done.returncode == 0, (line, done.stdout, done.stderr)
        results.append(done)
    return results


def test_the_readme_path_runs_against_the_simulator(sim_server: str) -> None:
    readme = ROOT / "README.md"
    path = next(b for b in blocks(readme, "sh") if "order-engine place" in b)
    place, listing, cancel, *_ = run_path(path, sim_server)
    assert place.stdout.startswith("placed:   order 0000001: buy 10 005930 at 50,000 on KRX")
    assert "0000001" in listing.stdout and "1 open order(s)" in listing.stdout
    assert "outcome:  accepted" in cancel.stdout


def test_the_cli_page_path_runs_against_the_simulator(sim_server: str) -> None:
    path = next(b for b in blocks(DOCS / "cli.md", "sh") if "order-engine place" in b)
    place, listing, partial, rest = run_path(path, sim_server)
    assert "order 0000001" in place.stdout and "1 open order(s)" in listing.stdout
    assert "allowed" in partial.stdout and "accepted" in partial.stdout
    assert "accepted" in rest.stdout
