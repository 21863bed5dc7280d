"""sim-server's real-time WebSocket, driven by a plain ``websockets`` client as any published
Kiwoom client would drive it: LOGIN, REG, PING, REAL frames in the official shape, faults."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from test_kiwoom_simserver import Client
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from adapters.kiwoom.realtime import events_from_frame
from adapters.kiwoom.simserver import SimServer
from adapters.kiwoom.ws_frames import FIELDS_00
from adapters.kiwoom.ws_server import WsFault, WsFaultKind
from engine import OrderBook

REG = {"trnm": "REG", "grp_no": "1", "refresh": "1", "data": [{"item": [""], "type": ["00"]}]}


@pytest.fixture
def server() -> Iterator[SimServer]:
    with SimServer(market=False, rate=None, ws_ping_interval=0.2) as sim:
        yield sim


@pytest.fixture
def rest(server: SimServer) -> Client:
    return Client(server)


def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    ws.send(json.dumps(message))


def receive(ws: ClientConnection, timeout: float = 2.0, *, echo: bool = True) -> dict[str, Any]:
    """The next message that is not a PING (PINGs are echoed unchanged when ``echo``)."""
    deadline = time.monotonic() + timeout
    while True:
        text = ws.recv(timeout=max(0.01, deadline - time.monotonic()))
        message: dict[str, Any] = json.loads(text)
        if message.get("trnm") == "PING":
            if echo:
                ws.send(text)
            continue
        return message


def login(server: SimServer, token: str, **kw: Any) -> ClientConnection:
    ws: ClientConnection = connect(server.ws_endpoint, **kw).__enter__()
    send(ws, {"trnm": "LOGIN", "token": token})
    answer = receive(ws)
    assert answer == {"trnm": "LOGIN", "return_code": 0, "return_msg": ""}
    send(ws, REG)
    assert receive(ws) == {"trnm": "REG", "return_code": 0, "return_msg": ""}
    return ws


def reals(ws: ClientConnection, n: int, timeout: float = 2.0) -> list[dict[str, str]]:
    """The values of the next ``n`` REAL entries."""
    out: list[dict[str, str]] = []
    while len(out) < n:
        message = receive(ws, timeout)
        assert message["trnm"] == "REAL", message
        for entry in message["data"]:
            assert (entry["type"], entry["name"]) == ("00", "주문체결")
            assert entry["item"] == entry["values"]["9001"]
            out.append(entry["values"])
    return out


def brief(values: dict[str, str]) -> tuple[str, ...]:
    keys = ("9203", "904", "905", "913", "900", "902", "911", "915")
    return tuple(values[k] for k in keys)


def test_login_is_answered_first_and_a_token_the_rest_side_never_issued_is_refused(
    server: SimServer, rest: Client
) -> None:
    with connect(server.ws_endpoint) as ws:
        send(ws, {"trnm": "LOGIN", "token": "never-issued"})
        answer = json.loads(ws.recv(timeout=2))
        assert answer["trnm"] == "LOGIN" and answer["return_code"] == 1
        assert type(answer["return_code"]) is int and "8005" in answer["return_msg"]
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=2)
    with connect(server.ws_endpoint) as ws:  # anything before LOGIN: refused and closed
        send(ws, REG)
        assert json.loads(ws.recv(timeout=2))["return_code"] == 1
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=2)
    headers = {"authorization": f"Bearer {rest.token}", "appkey": "app", "api-id": "00"}
    with login(server, rest.token, additional_headers=headers) as ws:  # headers tolerated
        assert ws.ping().wait(2)  # control pings are answered
    with pytest.raises(InvalidStatus):
        connect(server.ws_url + "/elsewhere")
    server.expire_tokens()
    with connect(server.ws_endpoint) as ws:
        send(ws, {"trnm": "LOGIN", "token": rest.token})
        assert "8005" in json.loads(ws.recv(timeout=2))["return_msg"]


def test_frames_carry_every_official_field_as_strings_one_per_change(
    server: SimServer, rest: Client
) -> None:
    ws = login(server, rest.token)
    with ws:
        a = rest.buy(10, 70_000)
        placed = reals(ws, 2)
        assert [brief(v) for v in placed] == [
            (a, "0000000", "+매수", "접수", "10", "10", "", ""),
            (a, "0000000", "+매수", "확인", "10", "10", "", ""),
        ]
        for values in placed:
            assert list(values) == list(FIELDS_00)
            assert all(type(v) is str for v in values.values())
        first = placed[0]
        assert (first["9201"], first["9001"], first["302"], first["906"], first["907"]) == (
            "1234567890",
            "005930",
            "삼성전자",
            "보통",
            "2",
        )
        assert (first["2134"], first["2135"], first["2136"], first["919"]) == ("1", "KRX", "N", "0")
        assert len(first["908"]) == 6 and first["908"].isdigit()
        server.trade("005930", 70_000, 3)
        server.trade("005930", 69_900, 2)
        fills = reals(ws, 2)
        assert [brief(v) for v in fills] == [
            (a, "0000000", "+매수", "체결", "10", "7", "3", "3"),
            (a, "0000000", "+매수", "체결", "10", "5", "5", "2"),
        ]
        assert [(v["910"], v["914"], v["903"]) for v in fills] == [
            ("70000", "70000", "210000"),
            ("69900", "69900", "349800"),
        ]
        assert fills[0]["909"] and fills[0]["909"] != fills[1]["909"]
        cancel = rest.cancel(a, "2")["ord_no"]
        assert [brief(v) for v in reals(ws, 3)] == [
            (cancel, a, "매수취소", "접수", "2", "2", "", ""),
            (cancel, a, "매수취소", "확인", "2", "0", "", ""),
            (a, "0000000", "+매수", "확인", "10", "3", "", ""),
        ]
        moved = rest.modify(a, "0", "69000")["ord_no"]
        assert [brief(v) for v in reals(ws, 3)] == [
            (moved, a, "+매수정정", "접수", "3", "3", "", ""),
            (moved, a, "+매수정정", "확인", "3", "3", "", ""),
            (a, "0000000", "+매수", "확인", "10", "0", "", ""),
        ]
        last = rest.cancel(moved, "0")["ord_no"]
        assert [brief(v) for v in reals(ws, 3)] == [
            (last, moved, "매수취소", "접수", "3", "3", "", ""),
            (last, moved, "매수취소", "확인", "3", "0", "", ""),
            (moved, a, "+매수정정", "취소", "3", "0", "", ""),
        ]
        server.trade("000660", 180_000, 1)  # the day's first price of 000660
        rejected = rest.buy(1, 500_000, "000660")  # outside the daily band: the venue rejects it
        frames = reals(ws, 2)
        assert [brief(v)[:4] for v in frames] == [
            (rejected, "0000000", "+매수", "접수"),
            (rejected, "0000000", "+매수", "거부"),
        ]
        assert frames[1]["919"] not in ("", "0")


def test_frames_map_to_events_that_rebuild_the_exchange_truth(
    server: SimServer, rest: Client
) -> None:
    ws = login(server, rest.token)
    with ws:
        a = rest.buy(10, 70_000)
        b = rest.sell(4, 71_000)
        server.trade("005930", 70_000, 6)
        rest.cancel(a, "0")
        moved = rest.modify(b, "0", "70900")["ord_no"]
        server.trade("005930", 71_000, 3)
        book = OrderBook()
        today = date.today()
        deadline = time.monotonic() + 3
        while not (moved in book and book.get(moved).filled_qty == 3):
            assert time.monotonic() < deadline, "frames missing"
            for event in events_from_frame(json.dumps(receive(ws)), trade_date=today):
                book.apply(event)
    for no in (a, b, moved):
        truth = server.truth(no)
        order = book.get(no)
        assert (order.filled_qty, order.leaves_qty, order.state) == (
            truth.filled,
            truth.leaves,
            truth.state,
        ), no


def test_unechoed_ping_closes_the_session_and_echoed_ones_keep_it(
    server: SimServer, rest: Client
) -> None:
    kept = login(server, rest.token)
    quiet = login(server, server.issue_token("other-app"))
    with quiet, kept:
        for _ in range(8):  # several PINGs come to both; only ``kept`` echoes them
            with pytest.raises(TimeoutError):
                receive(kept, 0.1)
        assert json.loads(quiet.recv(timeout=1)) == {"trnm": "PING"}
        with pytest.raises(ConnectionClosed):
            while True:
                quiet.recv(timeout=1)  # the PINGs it never echoed, then the close
        rest.buy(1, 70_000)
        assert len(reals(kept, 2)) == 2  # still open


def test_a_second_login_with_the_same_app_key_replaces_the_first_with_a_system_message(
    server: SimServer, rest: Client
) -> None:
    first = login(server, rest.token)
    second_token = rest.issue()["token"]  # the same app key
    second = login(server, second_token)
    with first, second:
        message = receive(first)
        assert message["trnm"] == "SYSTEM" and message["message"]
        with pytest.raises(ConnectionClosed):
            first.recv(timeout=2)
        rest.buy(1, 70_000)
        assert len(reals(second, 2)) == 2
        server.inject_ws(WsFault(WsFaultKind.SYSTEM, message="정비"))
        assert receive(second) == {"trnm": "SYSTEM", "code": "R10001", "message": "정비"}
        with pytest.raises(ConnectionClosed):
            second.recv(timeout=2)


def test_faults_drop_duplicate_delay_and_silence(server: SimServer, rest: Client) -> None:
    ws = login(server, rest.token)
    with ws:
        server.inject_ws(WsFault(WsFaultKind.DUPLICATE, times=1))
        a = rest.buy(1, 70_000)
        frames = reals(ws, 3)
        assert [v["913"] for v in frames] == ["접수", "접수", "확인"]
        assert frames[0] == frames[1]
        server.inject_ws(WsFault(WsFaultKind.DELAY, times=2, delay=0.4))
        started = time.monotonic()
        b = rest.buy(1, 69_000)
        assert rest.tr("ka10075", {"all_stk_tp": "0", "trde_tp": "0", "stex_tp": "0"})["oso"]
        late = reals(ws, 2)
        assert time.monotonic() - started >= 0.35  # the REST answers came long before
        assert {v["9203"] for v in late} == {b} and a != b
        server.inject_ws(WsFault(WsFaultKind.NO_PING, delay=2.0))
        time.sleep(0.3)  # a PING sent just before may still arrive
        while True:
            try:
                ws.recv(timeout=0.3)
            except TimeoutError:
                break
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.4)  # no PING for a while, and the session stays open
        server.inject_ws(WsFault(WsFaultKind.DROP))
        with pytest.raises(ConnectionClosed):
            while True:
                ws.recv(timeout=2)
    deadline = time.monotonic() + 2
    while server.feed.sessions:
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_a_client_written_like_kiwoom_s_own_sample_works_with_only_its_host_changed(
    server: SimServer, rest: Client
) -> None:
    """An asyncio client in the shape of the published samples: connect, LOGIN, REG on the
    LOGIN answer, echo every PING, print the rest; only SOCKET_URL differs from Kiwoom's."""
    import asyncio

    import websockets

    socket_url = server.ws_url + "/api/dostk/websocket"  # Kiwoom: wss://api.kiwoom.com:10000
    access_token = rest.token
    received: list[dict[str, Any]] = []

    async def sample() -> None:
        async with websockets.connect(socket_url) as websocket:
            await websocket.send(json.dumps({"trnm": "LOGIN", "token": access_token}))
            while len([m for m in received if m.get("trnm") == "REAL"]) < 3:
                response = json.loads(await asyncio.wait_for(websocket.recv(), 5))
                if response.get("trnm") == "LOGIN":
                    if response.get("return_code") != 0:
                        raise AssertionError(f"login failed: {response}")
                    await websocket.send(
                        json.dumps(
                            {
                                "trnm": "REG",
                                "grp_no": "1",
                                "refresh": "1",
                                "data": [{"item": [""], "type": ["00"]}],
                            }
                        )
                    )
                elif response.get("trnm") == "PING":
                    await websocket.send(json.dumps(response))
                else:
                    received.append(response)
                    if response.get("trnm") == "REG":
                        await asyncio.to_thread(rest.buy, 2, 70_000)
                        await asyncio.to_thread(server.trade, "005930", 70_000, 1)

    asyncio.run(sample())
    assert received[0] == {"trnm": "REG", "return_code": 0, "return_msg": ""}
    statuses = [m["data"][0]["values"]["913"] for m in received if m["trnm"] == "REAL"]
    assert statuses == ["접수", "확인", "체결"]
