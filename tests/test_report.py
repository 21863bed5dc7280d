"""The HTML day report: what it holds, what it derives from events, and a real browser."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

pytest.importorskip("plotly", reason="the [report] extra is not installed")

from adapters.cli.main import main
from adapters.report import Recorder, day_from_events, read_events
from adapters.report.html import timelines
from adapters.sim import Latency, run_session
from engine import OrderState, Side
from engine import events as ev
from engine.sessions import KST

SMALL = ["--orders", "40", "--step-ms", "2000", "--latency-ms", "20-300", "--reorder"]
CHROMIUM = "/usr/bin/chromium"
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=KST)


@pytest.fixture(scope="module")
def day_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """One simulated day with --report and --events-out, and its events drawn again."""
    root = tmp_path_factory.mktemp("report")
    live, events, after = root / "day.html", root / "day.jsonl", root / "after.html"
    args = ["simulate", *SMALL, "--seed", "4", "--events-out", str(events), "--report", str(live)]
    assert main(args) == 0
    assert main(["report", str(events), "-o", str(after)]) == 0
    return live, events, after


def test_the_live_report_is_self_contained_and_holds_the_whole_day(
    day_files: tuple[Path, Path, Path],
) -> None:
    page = day_files[0].read_text(encoding="utf-8")
    assert re.findall(r"<script[^>]*\bsrc=", page) == []  # nothing loaded from anywhere
    assert len(page) > 3_000_000  # plotly.js is inside
    assert page.count("Plotly.newPlot") == 3
    assert "order-engine simulate: seed 4, 40 orders" in page  # the summary at the top
    assert "Engine view == exchange truth: MATCHED" in page
    for trace in (
        "buy placed",
        "sell placed",
        "execution",
        "cancel allowed",
        "cancel refused (engine)",
        "cancel rejected (exchange)",
        "race",
        "Orders by state over the day",
        "A sample of order timelines",
    ):
        assert trace in page, trace
    assert "recorded while the day ran" in page
    assert "FULLY_FILLED: every share is filled" in page or "ALREADY_CANCELLED: " in page


def test_a_report_from_events_says_what_it_cannot_show(
    day_files: tuple[Path, Path, Path],
) -> None:
    page = day_files[2].read_text(encoding="utf-8")
    assert "derived from events" in page
    assert "Cancels the engine refused are not shown" in page
    assert "price (executions)" in page
    assert "RC4033" in page  # the exchange's rejections come from the events
    assert "Races (derived from the events):" in page


def test_races_derived_from_events_equal_the_ones_the_harness_counted() -> None:
    for seed, latency in (
        (1, Latency.uniform("5-150")),
        (2, Latency(*[Latency.uniform("20-300").request] * 3, reorder=True)),
    ):
        recorder = Recorder(("005930", "000660", "035420"))
        harness, report = run_session(
            seed=seed, orders=120, step_ms=2000, latency=latency, on_start=recorder.attach
        )
        live = recorder.day(harness.book.events)
        assert Counter(m.kind for m in live.races) == Counter(report.races)
        assert len(live.refusals) == sum(report.cancels["refused"].values())
        assert Counter(m.kind for m in live.refusals) == Counter(report.cancels["refused"])
        derived = day_from_events(harness.book.events)
        assert Counter(m.kind for m in derived.races) == Counter(report.races)
        assert report.races  # there was something to derive
        assert derived.refusals == [] and derived.notes


def test_timelines_give_each_state_with_its_start() -> None:
    events = [
        ev.OrderAccepted("0000001", "005930", Side.BUY, 10, 70_000, ts=T0),
        ev.OrderConfirmed("0000001", ts=T0 + timedelta(milliseconds=40)),
        ev.OrderFilled("0000001", "f1", 4, 70_000, ts=T0 + timedelta(seconds=2)),
        ev.CancelRequested("0000001", "R1", 0, ts=T0 + timedelta(seconds=3)),
        ev.CancelConfirmed("0000002", "0000001", 6, "R1", ts=T0 + timedelta(seconds=4)),
    ]
    _, history = timelines(events)
    assert history["0000001"] == [
        (T0, OrderState.RECEIVED),
        (T0 + timedelta(milliseconds=40), OrderState.CONFIRMED),
        (T0 + timedelta(seconds=2), OrderState.PARTIALLY_FILLED),
        (T0 + timedelta(seconds=4), OrderState.CANCELLED),
    ]


def test_bad_input_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    good = json.dumps(ev.OrderConfirmed("0000001", ts=T0).to_dict())
    bad.write_text(good + "\n" + '{"type": "Nope"}\n', encoding="utf-8")
    out = tmp_path / "out.html"
    assert main(["report", str(bad), "-o", str(out)]) == 2
    assert "line 2: unknown event type 'Nope'" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing.jsonl"), "-o", str(out)]) == 2
    assert main(["report", str(bad), "-o", str(tmp_path / "out.png")]) == 2
    assert main(["simulate", "--orders", "5", "--report", str(tmp_path / "day.pdf")]) == 2
    assert "an .html file" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "day.pdf").exists()
    with pytest.raises(ValueError, match="line 2"):
        read_events(bad)


def test_without_plotly_the_message_names_the_extra(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['plotly'] = None\n"
        "from adapters.cli.main import main\n"
        f"raise SystemExit(main(['simulate', '--orders', '5', '--report', {str(tmp_path)!r} + "
        "'/d.html']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "the HTML report needs the [report] extra: pip install 'kiwoom-order-engine[report]'"
    )
    assert not (tmp_path / "d.html").exists()


# -- a real browser -----------------------------------------------------------------------------
needs_chromium = pytest.mark.skipif(
    shutil.which("chromium") is None and not Path(CHROMIUM).exists(),
    reason="no headless browser: install Debian's chromium (apt-get install chromium) to "
    "check the report renders without JavaScript errors",
)


def _chromium(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    binary = CHROMIUM if Path(CHROMIUM).exists() else str(shutil.which("chromium"))
    return subprocess.run(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
            *extra,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _rendered(page: Path, profile: Path) -> tuple[str, str]:
    """Return the page's root element as the browser left it, and the browser's log."""
    done = _chromium(page, profile, "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    root = re.search(r"<html[^>]*>", done.stdout)
    assert root is not None, done.stdout[:500]
    return root.group(0), done.stderr


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


@needs_chromium
@pytest.mark.parametrize("which", [0, 2], ids=["live", "from-events"])
def test_the_report_renders_in_a_real_browser_without_script_errors(
    which: int, day_files: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    page = day_files[which]
    root, log = _rendered(page, tmp_path / "profile")
    assert 'data-rendered="ok"' in root, root  # all three plots were drawn
    assert "data-js-errors" not in root
    assert "Uncaught" not in log
    if which:
        return  # one screenshot is enough: the pages share their code
    shot = tmp_path / "shot.png"
    done = _chromium(page, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1200,1600")
    assert done.returncode == 0 and shot.exists()
    assert _png_size(shot) == (1200, 1600)
    assert shot.stat().st_size > 60_000  # charts, not a blank page


@needs_chromium
def test_the_browser_check_catches_a_script_error(
    day_files: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.html"
    page = day_files[0].read_text(encoding="utf-8")
    head = page[: page.index("</head>")]  # the report's own error listener, without plotly
    broken.write_text(
        head + "</head><body><script>undefinedFunction();</script></body></html>",
        encoding="utf-8",
    )
    root, log = _rendered(broken, tmp_path / "profile")
    assert 'data-js-errors="1"' in root
    assert "Uncaught" in log
