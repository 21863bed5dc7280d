"""``order-engine watch`` (adapters/cli/watch.py) against sim-server's REST and WebSocket."""

from __future__ import annotations

import argparse
import io
import json
import threading
import time
from collections.abc import Iterator

import pytest
from websockets.sync.client import connect

from adapters.cli.watch import add_arguments, run_watch
from adapters.kiwoom.client import KiwoomClient
from adapters.kiwoom.simserver import SimServer
from engine import Side


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimServer]:
    monkeypatch.setenv("KIWOOM_APPKEY", "watch-app")
    monkeypatch.setenv("KIWOOM_SECRETKEY", "watch-secret")
    with SimServer(market=False, rate=None, ws_ping_interval=0.2) as sim:
        yield sim


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def watch_while(server: SimServer, seconds: float, *extra: str) -> tuple[int, str, str, str]:
    """Run watch for ``seconds`` while another client of the account trades; return its output."""
    rest = KiwoomClient(
        server.base_url, appkey="trader", secretkey="x", allow_loopback=True, rates={"*": None}
    )
    before = rest.place(stk_cd="005930", side=Side.SELL, qty=3, price=72_000).ord_no
    out, err = io.StringIO(), io.StringIO()
    args = parse("--base-url", server.base_url, "--ws-url", server.ws_url, "--for", str(seconds))
    for flag in extra:
        setattr(args, flag.lstrip("-"), True)
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(run_watch(args, out, err)))
    thread.start()
    deadline = time.monotonic() + 5
    while server.feed.sessions < 1 or "0000001" not in out.getvalue():
        assert time.monotonic() < deadline, err.getvalue()
        time.sleep(0.01)
    with rest:
        after = rest.place(stk_cd="005930", side=Side.BUY, qty=10, price=70_000).ord_no
        server.trade("005930", 70_000, 4)
        rest.cancel(orig_ord_no=after, stk_cd="005930", qty=0)
    thread.join(seconds + 5)
    assert not thread.is_alive()
    return result[0], out.getvalue(), err.getvalue(), before + " " + after


def test_watch_prints_the_reconciled_day_then_one_line_per_change(server: SimServer) -> None:
    code, out, err, numbers = watch_while(server, 2.5)
    before, after = numbers.split()
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[1:] == [
        before,
        "005930",
        "SELL",
        "확인",
        "CONFIRMED",
        "F=0",
        "C=0",
        "L=3",
    ]
    mine = [line.split()[4:] for line in lines if line.split()[1] == after]
    assert mine[0] in (
        ["접수", "RECEIVED", "F=0", "C=0", "L=10"],
        ["확인", "CONFIRMED", "F=0", "C=0", "L=10"],
    )
    assert ["부분체결", "PARTIALLY_FILLED", "F=4", "C=0", "L=6"] in mine
    assert mine[-1] == ["취소", "CANCELLED", "F=4", "C=6", "L=0"]
    assert len(mine) == len({tuple(m) for m in mine})  # a line per change, never a repeat


def test_watch_json_lines(server: SimServer) -> None:
    code, out, _err, numbers = watch_while(server, 2.5, "--json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    last = [r for r in rows if r["ord_no"] == numbers.split()[1]][-1]
    assert (last["state"], last["state_ko"], last["filled"], last["cancelled"]) == (
        "CANCELLED",
        "취소",
        4,
        6,
    )
    assert all(r["time"].endswith("+09:00") for r in rows)


def test_watch_needs_the_websocket_url_of_a_loopback_server(server: SimServer) -> None:
    err = io.StringIO()
    assert run_watch(parse("--base-url", server.base_url), io.StringIO(), err) == 2
    assert "--ws-url" in err.getvalue()
    with pytest.raises(SystemExit):
        parse("--mock", "--for", "-1")


def test_watch_exits_1_when_another_session_replaces_it(server: SimServer) -> None:
    out, err = io.StringIO(), io.StringIO()
    args = parse("--base-url", server.base_url, "--ws-url", server.ws_url, "--for", "10")
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(run_watch(args, out, err)))
    started = time.monotonic()
    thread.start()
    deadline = time.monotonic() + 5
    while server.feed.sessions < 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    token = server.issue_token("watch-app")
    with connect(server.ws_endpoint) as rival:
        rival.send(json.dumps({"trnm": "LOGIN", "token": token}))
        assert json.loads(rival.recv(timeout=2))["return_code"] == 0
        thread.join(5)
    assert not thread.is_alive() and time.monotonic() - started < 8
    assert result == [1] and "replaced" in err.getvalue()
