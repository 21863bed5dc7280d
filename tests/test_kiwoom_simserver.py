"""The Kiwoom-compatible simulator server, over real HTTP on loopback with plain ``requests``."""

from __future__ import annotations

import argparse
import http.client
import io
import json
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests
from websockets.sync.client import connect

from adapters.cli.sim_server import add_arguments, run_sim_server
from adapters.kiwoom.simserver import Fault, FaultKind, SimServer
from adapters.kiwoom.transport import is_loopback
from engine import OrderState
from engine.sessions import KST

PATHS = {
    "kt10000": "/api/dostk/ordr",
    "kt10001": "/api/dostk/ordr",
    "kt10002": "/api/dostk/ordr",
    "kt10003": "/api/dostk/ordr",
    "ka10075": "/api/dostk/acnt",
    "kt00007": "/api/dostk/acnt",
}
MONDAY = datetime(2025, 3, 3, 10, 0, tzinfo=KST)


class FakeTime:
    """A clock and a wall time that move only when told, together."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.t = 0.0

    def clock(self) -> float:
        return self.t

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.t)


class Client:
    """Plain requests against a SimServer: one keep-alive session, a token, the TR headers."""

    def __init__(self, server: SimServer) -> None:
        self.server = server
        self.url = server.base_url
        self.http = requests.Session()
        self.token = self.issue()["token"]

    def issue(self, **body: Any) -> dict[str, Any]:
        body = {"grant_type": "client_credentials", "appkey": "app", "secretkey": "sec", **body}
        answer = self.http.post(f"{self.url}/oauth2/token", json=body, timeout=5)
        assert answer.status_code == 200
        data: dict[str, Any] = answer.json()
        return data

    def post(
        self,
        api_id: str,
        body: Any,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        path: str | None = None,
        timeout: float = 5,
    ) -> requests.Response:
        sent = {"api-id": api_id, "authorization": f"Bearer {token or self.token}"}
        sent.update(headers or {})
        url = self.url + (path or PATHS.get(api_id, "/api/dostk/ordr"))
        if isinstance(body, bytes):
            return self.http.post(url, data=body, headers=sent, timeout=timeout)
        return self.http.post(url, json=body, headers=sent, timeout=timeout)

    def tr(self, api_id: str, body: Any, **kw: Any) -> dict[str, Any]:
        answer = self.post(api_id, body, **kw)
        assert answer.status_code == 200, answer.text
        assert answer.headers["api-id"] == api_id
        data: dict[str, Any] = answer.json()
        return data

    def buy(self, qty: int = 10, price: int = 70_000, stk_cd: str = "005930") -> str:
        return self.order("kt10000", qty, price, stk_cd)

    def sell(self, qty: int = 10, price: int = 72_000, stk_cd: str = "005930") -> str:
        return self.order("kt10001", qty, price, stk_cd)

    def order(self, api_id: str, qty: int, price: int, stk_cd: str) -> str:
        data = self.tr(api_id, order_body(qty=str(qty), price=str(price), stk_cd=stk_cd))
        assert data["return_code"] == 0, data
        ord_no: str = data["ord_no"]
        return ord_no

    def cancel(self, orig: str, qty: str, stk_cd: str = "005930", **kw: Any) -> dict[str, Any]:
        body = {"dmst_stex_tp": "KRX", "orig_ord_no": orig, "stk_cd": stk_cd, "cncl_qty": qty}
        return self.tr("kt10003", body, **kw)

    def modify(self, orig: str, qty: str, price: str) -> dict[str, Any]:
        body = {
            "dmst_stex_tp": "KRX",
            "orig_ord_no": orig,
            "stk_cd": "005930",
            "mdfy_qty": qty,
            "mdfy_uv": price,
        }
        return self.tr("kt10002", body)

    def pages(self, api_id: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        """Follow cont-yn/next-key to the last page; return the pages' JSON bodies."""
        pages = []
        headers: dict[str, str] = {}
        while True:
            answer = self.post(api_id, body, headers=headers)
            assert answer.status_code == 200
            pages.append(answer.json())
            if answer.headers["cont-yn"] != "Y":
                assert answer.headers["next-key"] == ""
                return pages
            headers = {"cont-yn": "Y", "next-key": answer.headers["next-key"]}


def order_body(
    *, qty: str = "10", price: str = "70000", stk_cd: str = "005930", trde_tp: str = "0"
) -> dict[str, str]:
    return {
        "dmst_stex_tp": "KRX",
        "stk_cd": stk_cd,
        "ord_qty": qty,
        "ord_uv": price,
        "trde_tp": trde_tp,
        "cond_uv": "",
    }


OPEN_QUERY = {"all_stk_tp": "0", "trde_tp": "0", "stk_cd": "", "stex_tp": "0"}


def detail_query(day: str) -> dict[str, str]:
    return {
        "ord_dt": day,
        "qry_tp": "1",
        "stk_bond_tp": "0",
        "sell_tp": "0",
        "stk_cd": "",
        "fr_ord_no": "",
        "dmst_stex_tp": "%",
    }


def wait_for(condition: Callable[[], bool]) -> None:
    """Poll briefly for something another thread does (a delayed handler)."""
    for _ in range(500):
        if condition():
            return
        time.sleep(0.005)
    raise AssertionError("the condition never came true")


@pytest.fixture
def server() -> Iterator[SimServer]:
    with SimServer(market=False, rate=None, page_size=2) as sim:
        yield sim


@pytest.fixture
def client(server: SimServer) -> Client:
    return Client(server)


def today(server: SimServer) -> str:
    return server.exchange.start.astimezone(KST).strftime("%Y%m%d")


# -- tokens --------------------------------------------------------------------------------------
def test_token_issue_answers_a_bearer_token_expiring_in_korea_time() -> None:
    fake = FakeTime(MONDAY.astimezone(KST))
    with SimServer(market=False, clock=fake.clock, now=fake.now) as server:
        data = Client(server).issue()
    assert data["return_code"] == 0
    assert data["token_type"] == "bearer"
    assert data["expires_dt"] == "20250304100000"
    assert len(data["token"]) >= 32


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"appkey": ""}, "[8020:"),
        ({"secretkey": None}, "[8020:"),
        ({"appkey": 12}, "[8020:"),
        ({"grant_type": "refresh_token"}, "[8011:"),
    ],
)
def test_token_issue_refuses_missing_keys_and_other_grants(
    client: Client, body: dict[str, Any], code: str
) -> None:
    data = client.issue(**body)
    assert data["return_code"] == 3
    assert code in data["return_msg"]
    assert "token" not in data


def test_token_issue_checks_credentials_when_given() -> None:
    with SimServer(market=False, credentials={"app": "sec"}) as server:
        client = Client(server)
        assert "[8002:" in client.issue(secretkey="wrong")["return_msg"]
        assert "[8001:" in client.issue(appkey="other")["return_msg"]
        assert client.tr("ka10075", OPEN_QUERY)["return_code"] == 0


def test_revoked_token_stops_working(client: Client) -> None:
    assert client.tr("ka10075", OPEN_QUERY)["return_code"] == 0
    body = {"appkey": "app", "secretkey": "sec", "token": client.token}
    answer = client.http.post(f"{client.url}/oauth2/revoke", json=body, timeout=5)
    assert answer.json() == {"return_code": 0, "return_msg": "정상적으로 처리되었습니다"}
    refused = client.tr("ka10075", OPEN_QUERY)
    assert refused == {
        "return_code": 3,
        "return_msg": "인증에 실패했습니다[8005:Token이 유효하지 않습니다]",
    }
    again = client.http.post(f"{client.url}/oauth2/revoke", json=body, timeout=5).json()
    assert again["return_code"] == 3


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic abc", "token-without-scheme", "Bearer unknown-token"],
)
def test_missing_or_bad_authorization_is_8005_and_changes_nothing(
    client: Client, server: SimServer, authorization: str | None
) -> None:
    headers = {"api-id": "kt10000"}
    if authorization is not None:
        headers["authorization"] = authorization
    answer = client.http.post(
        client.url + "/api/dostk/ordr", json=order_body(), headers=headers, timeout=5
    )
    assert answer.status_code == 200
    assert answer.json()["return_code"] == 3
    assert "[8005:" in answer.json()["return_msg"]
    assert len(server.exchange.orders) == 0


def test_expired_tokens_are_refused() -> None:
    fake = FakeTime(MONDAY)
    ttl = timedelta(hours=1)
    with SimServer(market=False, clock=fake.clock, now=fake.now, token_ttl=ttl) as server:
        client = Client(server)
        fake.t = 3599.0
        assert client.tr("ka10075", OPEN_QUERY)["return_code"] == 0
        fake.t = 3600.0
        assert "[8005:" in client.tr("ka10075", OPEN_QUERY)["return_msg"]
        client.token = client.issue()["token"]
        assert client.tr("ka10075", OPEN_QUERY)["return_code"] == 0
        server.expire_tokens()
        assert "[8005:" in client.tr("ka10075", OPEN_QUERY)["return_msg"]


# -- orders --------------------------------------------------------------------------------------
def test_place_buy_and_sell(client: Client, server: SimServer) -> None:
    buy = client.tr("kt10000", order_body(qty="10", price="70000"))
    sell = client.tr("kt10001", order_body(qty="3", price="72000", stk_cd="000660"))
    assert buy == {
        "ord_no": "0000001",
        "dmst_stex_tp": "KRX",
        "return_code": 0,
        "return_msg": "매수주문이 완료되었습니다",
    }
    assert sell["ord_no"] == "0000002"
    assert sell["return_msg"] == "매도주문이 완료되었습니다"
    first, second = server.truth("0000001"), server.truth("0000002")
    assert (first.side.name, first.qty, first.price, first.stk_cd) == ("BUY", 10, 70_000, "005930")
    assert (second.side.name, second.qty, second.stk_cd) == ("SELL", 3, "000660")
    assert first.state is OrderState.CONFIRMED


def test_market_order_without_price_fills_against_the_last_trade(
    client: Client, server: SimServer
) -> None:
    server.trade("005930", 71_000, 100)
    body = order_body(qty="5", price="", trde_tp="3")
    ord_no = client.tr("kt10000", body)["ord_no"]
    truth = server.truth(ord_no)
    assert (truth.filled, truth.notional) == (5, 5 * 71_000)


def test_partial_cancel_then_cancel_all(client: Client, server: SimServer) -> None:
    ord_no = client.buy(10)
    partial = client.cancel(ord_no, "3")
    assert partial == {
        "ord_no": "0000002",
        "base_orig_ord_no": ord_no,
        "cncl_qty": "000000000003",
        "return_code": 0,
        "return_msg": "매수취소 주문입력이 완료되었습니다",
    }
    assert (server.truth(ord_no).leaves, server.truth(ord_no).cancelled) == (7, 3)
    rest = client.cancel(ord_no, "0")
    assert rest["ord_no"] == "0000003"
    assert rest["cncl_qty"] == "000000000007"
    truth = server.truth(ord_no)
    assert (truth.leaves, truth.cancelled, truth.state) == (0, 10, OrderState.CANCELLED)


def test_cancel_all_answers_the_shares_open_after_a_partial_fill(
    client: Client, server: SimServer
) -> None:
    ord_no = client.sell(10, 72_000)
    server.trade("005930", 72_000, 4)
    answer = client.cancel(ord_no, "0")
    assert answer["cncl_qty"] == "000000000006"
    assert answer["return_msg"] == "매도취소 주문입력이 완료되었습니다"
    truth = server.truth(ord_no)
    assert (truth.filled, truth.cancelled, truth.leaves) == (4, 6, 0)


def test_cancel_of_a_filled_order_is_rc4033_and_takes_no_number(
    client: Client, server: SimServer
) -> None:
    ord_no = client.buy(5, 70_000)
    server.trade("005930", 70_000, 5)
    assert server.truth(ord_no).state is OrderState.FILLED
    answer = client.cancel(ord_no, "0")
    assert answer == {"return_code": 20, "return_msg": "[2000](RC4033:정정/취소할 수량이 없습니다)"}
    assert client.buy(1) == "0000002"  # the refused cancel consumed no order number


def test_cancel_of_more_than_is_open_is_rc4042(client: Client, server: SimServer) -> None:
    ord_no = client.buy(5)
    answer = client.cancel(ord_no, "6")
    assert answer["return_code"] == 20
    assert "(RC4042:" in answer["return_msg"]
    assert server.truth(ord_no).leaves == 5


@pytest.mark.parametrize(("orig", "stk_cd"), [("0000009", "005930"), ("0000001", "000660")])
def test_cancel_or_modify_of_an_unknown_order_is_rc4032(
    client: Client, server: SimServer, orig: str, stk_cd: str
) -> None:
    client.buy(5)
    answer = client.cancel(orig, "0", stk_cd=stk_cd)
    assert answer == {
        "return_code": 20,
        "return_msg": "[2000](RC4032:원주문번호가 존재하지 않습니다)",
    }
    body = {
        "dmst_stex_tp": "KRX",
        "orig_ord_no": orig,
        "stk_cd": stk_cd,
        "mdfy_qty": "0",
        "mdfy_uv": "69000",
    }
    assert "(RC4032:" in client.tr("kt10002", body)["return_msg"]
    assert server.truth("0000001").leaves == 5


def test_after_a_modify_only_the_new_number_can_be_cancelled(
    client: Client, server: SimServer
) -> None:
    first = client.buy(10, 70_000)
    moved = client.modify(first, "0", "69900")
    assert moved == {
        "ord_no": "0000002",
        "base_orig_ord_no": first,
        "mdfy_qty": "000000000010",
        "dmst_stex_tp": "KRX",
        "return_code": 0,
        "return_msg": "매수정정 주문입력이 완료되었습니다",
    }
    second = client.modify(moved["ord_no"], "4", "69800")
    assert second["base_orig_ord_no"] == first  # the root of the chain
    assert second["mdfy_qty"] == "000000000004"
    old = client.cancel(first, "0")
    assert "(RC4033:" in old["return_msg"]
    new = client.cancel(moved["ord_no"], "0")
    assert new["return_code"] == 0
    assert new["base_orig_ord_no"] == first
    assert new["cncl_qty"] == "000000000006"
    assert server.truth(moved["ord_no"]).state is OrderState.CANCELLED
    assert server.truth(second["ord_no"]).leaves == 4


def _missing(field: str) -> Callable[[dict[str, Any]], None]:
    return lambda body: body.pop(field)


def _set(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda body: body.__setitem__(field, value)


PLACE_ERRORS = [
    (_missing("ord_qty"), "1511", "ord_qty"),
    (_set("ord_qty", ""), "1511", "ord_qty"),
    (_set("ord_qty", 10), "1517", "ord_qty"),
    (_set("ord_qty", "0"), "1517", "ord_qty"),
    (_set("ord_qty", "1.5"), "1517", "ord_qty"),
    (_set("ord_qty", "-1"), "1517", "ord_qty"),
    (_set("ord_qty", "１０"), "1517", "ord_qty"),
    (_set("ord_qty", "1234567890123"), "1517", "ord_qty"),
    (_set("stk_cd", "A005930"), "1517", "stk_cd"),
    (_set("stk_cd", "KRX:005930"), "1517", "stk_cd"),
    (_missing("stk_cd"), "1511", "stk_cd"),
    (_set("dmst_stex_tp", "KOSPI"), "1517", "dmst_stex_tp"),
    (_missing("dmst_stex_tp"), "1511", "dmst_stex_tp"),
    (_set("trde_tp", "5"), "1517", "trde_tp"),
    (_set("trde_tp", "00"), "1517", "trde_tp"),
    (_set("ord_uv", ""), "1511", "ord_uv"),
    (_set("ord_uv", "0"), "1517", "ord_uv"),
    (_set("ord_uv", "7만"), "1517", "ord_uv"),
    (_set("ord_uv", 70000), "1517", "ord_uv"),
]


@pytest.mark.parametrize(("change", "code", "field"), PLACE_ERRORS)
def test_malformed_order_bodies_are_input_errors_and_change_nothing(
    client: Client,
    server: SimServer,
    change: Callable[[dict[str, Any]], None],
    code: str,
    field: str,
) -> None:
    body: dict[str, Any] = order_body()
    change(body)
    answer = client.tr("kt10000", body)
    assert answer["return_code"] == 2
    assert f"[{code}:" in answer["return_msg"]
    assert answer["return_msg"].endswith(f"({field})]")
    assert len(server.exchange.orders) == 0
    assert client.buy() == "0000001"  # no number was taken


CANCEL_ERRORS = [
    (_missing("cncl_qty"), "1511", "cncl_qty"),
    (_set("cncl_qty", "-1"), "1517", "cncl_qty"),
    (_set("cncl_qty", "0.5"), "1517", "cncl_qty"),
    (_set("cncl_qty", 0), "1517", "cncl_qty"),
    (_set("orig_ord_no", "140"), "1517", "orig_ord_no"),
    (_set("orig_ord_no", "00000010"), "1517", "orig_ord_no"),
    (_missing("orig_ord_no"), "1511", "orig_ord_no"),
    (_set("stk_cd", "A005930"), "1517", "stk_cd"),
    (_set("dmst_stex_tp", "krx"), "1517", "dmst_stex_tp"),
]


@pytest.mark.parametrize(("change", "code", "field"), CANCEL_ERRORS)
def test_malformed_cancel_bodies_are_input_errors_and_change_nothing(
    client: Client,
    server: SimServer,
    change: Callable[[dict[str, Any]], None],
    code: str,
    field: str,
) -> None:
    ord_no = client.buy(10)
    body: dict[str, Any] = {
        "dmst_stex_tp": "KRX",
        "orig_ord_no": ord_no,
        "stk_cd": "005930",
        "cncl_qty": "3",
    }
    change(body)
    answer = client.tr("kt10003", body)
    assert answer["return_code"] == 2
    assert answer["return_msg"].startswith(f"[{code}:")
    assert answer["return_msg"].endswith(f"({field})]")
    truth = server.truth(ord_no)
    assert (truth.leaves, truth.cancelled, truth.inflight) == (10, 0, 0)
    assert client.buy() == "0000002"


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_a_body_that_is_not_a_json_object_is_1517(client: Client, raw: bytes) -> None:
    answer = client.tr("kt10000", raw)
    assert answer == {
        "return_code": 2,
        "return_msg": "[1517:입력 값 형식이 올바르지 않습니다(body)]",
    }


def test_wrong_path_and_api_id_codes(client: Client) -> None:
    session, url = client.http, client.url
    auth = {"authorization": f"Bearer {client.token}"}
    body = order_body()
    no_id = session.post(url + "/api/dostk/ordr", json=body, headers=auth, timeout=5)
    assert (no_id.status_code, no_id.json()["return_code"]) == (200, 2)
    assert "[1501:" in no_id.json()["return_msg"]
    unknown = client.post("kt99999", body)
    assert "[1505:" in unknown.json()["return_msg"]
    wrong = client.post("kt10003", body, path="/api/dostk/acnt")
    assert "[1504:" in wrong.json()["return_msg"]
    token_path = client.post("kt10000", body, path="/oauth2/token")
    assert "[1504:" in token_path.json()["return_msg"]
    missing = client.post("kt10000", body, path="/api/dostk/nothing")
    assert missing.status_code == 404
    assert missing.json()["return_code"] == 2
    assert "[1504:" in missing.json()["return_msg"]
    get = session.get(url + "/api/dostk/ordr", headers={"api-id": "kt10000", **auth}, timeout=5)
    assert get.status_code == 404
    assert client.server.calls["(other)"] == 2  # no api-id and kt99999 share one counter
    assert len(client.server.exchange.orders) == 0


def test_connections_are_kept_alive(server: SimServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    body = json.dumps({"grant_type": "client_credentials", "appkey": "a", "secretkey": "b"})
    for _ in range(3):  # three requests on one connection
        conn.request("POST", "/oauth2/token", body, {"Content-Type": "application/json"})
        answer = conn.getresponse()
        assert answer.version == 11
        assert answer.getheader("Connection") is None
        assert json.loads(answer.read())["return_code"] == 0
    conn.close()


def test_stop_closes_kept_alive_connections() -> None:
    server = SimServer(market=False).start()
    client = Client(server)  # its session now holds an open keep-alive connection
    server.stop()
    with pytest.raises(requests.ConnectionError):
        client.tr("ka10075", OPEN_QUERY)
    server.stop()  # idempotent


# -- status lists --------------------------------------------------------------------------------
def test_open_orders_continue_over_pages_with_every_row_once(
    client: Client, server: SimServer
) -> None:
    placed = [client.buy(10, 70_000 - 100 * i) for i in range(3)]
    sold = client.sell(5, 72_000)
    done = client.buy(2, 70_500)
    server.trade("005930", 70_500, 2)  # fills `done` entirely (the highest bid)
    modified = client.modify(placed[1], "0", "69500")["ord_no"]
    server.trade("005930", 70_000, 4)  # part of placed[0]
    hynix = client.sell(1, 185_000, "000660")
    pages = client.pages("ka10075", OPEN_QUERY)
    assert len(pages) == 3
    rows = [row for page in pages for row in page["oso"]]
    assert [r["ord_no"] for r in rows] == [placed[0], placed[2], sold, modified, hynix]
    by_no = {r["ord_no"]: r for r in rows}
    assert done not in by_no and placed[1] not in by_no
    first = by_no[placed[0]]
    assert first["stk_cd"] == "005930"  # ka10075 rows: plain codes and numbers, as documented
    assert (first["ord_qty"], first["oso_qty"], first["cntr_qty"]) == ("10", "6", "4")
    assert (first["ord_stt"], first["cntr_pric"], first["io_tp_nm"]) == ("체결", "70000", "+매수")
    assert (first["orig_ord_no"], first["ord_pric"], first["trde_tp"]) == (
        "0000000",
        "70000",
        "보통",
    )
    assert (first["cntr_tot_amt"], first["acnt_no"], first["stk_nm"]) == (
        "280000",
        "1234567890",
        "삼성전자",
    )
    assert (first["stex_tp"], first["stex_tp_txt"], first["sor_yn"]) == ("1", "KRX", "N")
    assert len(first["tm"]) == 6
    assert by_no[sold]["io_tp_nm"] == "-매도"
    assert by_no[sold]["ord_stt"] == "확인"
    assert by_no[sold]["cntr_pric"] == "0"
    assert by_no[modified]["orig_ord_no"] == placed[1]
    assert by_no[modified]["io_tp_nm"] == "+매수정정"
    assert by_no[modified]["ord_pric"] == "69500"
    sells = client.pages("ka10075", {**OPEN_QUERY, "trde_tp": "1"})
    assert [r["ord_no"] for p in sells for r in p["oso"]] == [sold, hynix]
    other = client.pages("ka10075", {**OPEN_QUERY, "all_stk_tp": "1", "stk_cd": "000660"})
    assert [r["ord_no"] for p in other for r in p["oso"]] == [hynix]
    buys = client.pages("ka10075", {**OPEN_QUERY, "trde_tp": "2", "stex_tp": "1"})
    assert [r["ord_no"] for p in buys for r in p["oso"]] == [placed[0], placed[2], modified]


def test_order_detail_lists_orders_modifies_and_cancels_once_in_number_order(
    client: Client, server: SimServer
) -> None:
    a = client.buy(10, 70_000)  # 1
    b = client.sell(5, 72_000)  # 2
    client.cancel(a, "3")  # 3: partial cancel
    server.trade("005930", 70_000, 2)  # a fills 2 of its 7
    client.cancel(a, "0")  # 4: the 5 still open
    moved = client.modify(b, "0", "71900")["ord_no"]  # 5
    client.cancel(moved, "2")  # 6
    pages = client.pages("kt00007", detail_query(today(server)))
    assert len(pages) == 3
    rows = [row for page in pages for row in page["acnt_ord_cntr_prps_dtl"]]
    assert [r["ord_no"] for r in rows] == [f"{n:07d}" for n in range(1, 7)]
    by_no = {r["ord_no"]: r for r in rows}
    order = by_no[a]
    assert (order["ori_ord"], order["mdfy_cncl"], order["acpt_tp"]) == ("0000000", "", "확인")
    assert (order["ord_qty"], order["cnfm_qty"], order["cntr_qty"], order["ord_remnq"]) == (
        "0000000010",
        "0000000010",
        "0000000002",
        "0000000000",
    )
    assert (order["cntr_uv"], order["trde_tp"], order["dmst_stex_tp"]) == (
        "0000070000",
        "보통",
        "KRX",
    )
    assert (order["io_tp_nm"], order["crd_tp"], order["cond_uv"]) == (
        "현금매수",
        "보통매매",
        "0" * 10,
    )
    assert order["ord_tm"][2] == order["ord_tm"][5] == ":" and len(order["ord_tm"]) == 8
    partial, rest = by_no["0000003"], by_no["0000004"]
    assert (partial["ori_ord"], partial["mdfy_cncl"], partial["acpt_tp"]) == (a, "취소", "확인")
    assert (partial["ord_qty"], partial["cnfm_qty"], partial["ord_remnq"]) == (
        "0000000003",
        "0000000003",
        "0000000000",
    )
    assert "매수" in partial["io_tp_nm"]
    assert (rest["ord_qty"], rest["cnfm_qty"]) == ("0000000005", "0000000005")
    successor = by_no[moved]
    assert (successor["ori_ord"], successor["mdfy_cncl"]) == (b, "정정")
    assert (successor["ord_qty"], successor["ord_uv"]) == ("0000000005", "0000071900")
    assert "매도" in successor["io_tp_nm"]
    assert by_no[b]["ord_remnq"] == "0000000000"
    last = by_no["0000006"]
    assert (last["ori_ord"], last["cnfm_qty"], last["stk_cd"]) == (moved, "0000000002", "A005930")
    sells = client.pages("kt00007", {**detail_query(today(server)), "sell_tp": "1"})
    assert [r["ord_no"] for p in sells for r in p["acnt_ord_cntr_prps_dtl"]] == [
        b,
        moved,
        "0000006",
    ]
    later = client.pages("kt00007", {**detail_query(today(server)), "fr_ord_no": "0000005"})
    assert [r["ord_no"] for p in later for r in p["acnt_ord_cntr_prps_dtl"]] == [moved, "0000006"]
    empty = client.tr("kt00007", detail_query("20000101"))
    assert empty["acnt_ord_cntr_prps_dtl"] == []


def test_a_row_that_vanishes_between_pages_makes_no_later_row_skip_or_repeat(
    client: Client,
) -> None:
    numbers = [client.buy(1, 70_000 - 100 * i) for i in range(5)]
    first = client.post("ka10075", OPEN_QUERY)
    assert [r["ord_no"] for r in first.json()["oso"]] == numbers[:2]
    client.cancel(numbers[0], "0")  # a row of page one is gone before page two is asked
    client.cancel(numbers[2], "0")  # and so is the first row of page two
    headers = {"cont-yn": "Y", "next-key": first.headers["next-key"]}
    second = client.post("ka10075", OPEN_QUERY, headers=headers)
    assert [r["ord_no"] for r in second.json()["oso"]] == numbers[3:5]
    assert second.headers["cont-yn"] == "N"


def test_a_bad_continuation_key_is_an_input_error(client: Client) -> None:
    answer = client.tr("ka10075", OPEN_QUERY, headers={"cont-yn": "Y", "next-key": "x"})
    assert answer["return_code"] == 2
    assert answer["return_msg"].endswith("(next-key)]")
    bad = client.tr("ka10075", {**OPEN_QUERY, "trde_tp": "9"})
    assert bad["return_msg"].endswith("(trde_tp)]")
    no_day = client.tr("kt00007", {**detail_query("2025-03-03")})
    assert no_day["return_msg"].startswith("[1517:")


# -- the rate limit ------------------------------------------------------------------------------
def test_rate_limit_is_a_sliding_second_per_api_id_and_throttled_calls_are_not_processed() -> None:
    fake = FakeTime(MONDAY)
    with SimServer(market=False, rate=2, clock=fake.clock, now=fake.now) as server:
        client = Client(server)
        outcomes = []
        for t in (0.0, 0.6, 0.9, 1.0, 1.5, 1.6):
            fake.t = t
            answer = client.post("kt10000", order_body(qty="1"))
            outcomes.append(answer.status_code)
            if answer.status_code == 429:
                assert answer.json() == {
                    "return_code": 5,
                    "return_msg": "허용된 요청 개수를 초과하였습니다[1700:허용된 요청 개수를"
                    " 초과하였습니다. 유량=2, API ID=kt10000]",
                }
                assert answer.headers["api-id"] == "kt10000"
        assert outcomes == [200, 200, 429, 200, 429, 200]
        assert len(server.exchange.orders) == 4  # throttled requests were not processed
        assert server.throttled == 2
        assert server.calls["kt10000"] == 6
        calls = [c for c in server.log if c.api_id == "kt10000"]
        assert [c.outcome for c in calls].count("throttled") == 2
        assert sum(c.processed for c in calls) == 4
        # Another api-id has its own window; token endpoints are never limited.
        assert client.post("kt10001", order_body(qty="1", price="72000")).status_code == 200
        assert all(client.issue()["return_code"] == 0 for _ in range(5))
        server.set_rate("kt10001", 1)
        assert client.post("kt10001", order_body(qty="1", price="72000")).status_code == 429
        server.set_rate("kt10001", None)
        assert client.post("kt10001", order_body(qty="1", price="72000")).status_code == 200


# -- faults --------------------------------------------------------------------------------------
def _expect_delay(call: Callable[[], requests.Response]) -> None:
    with pytest.raises(requests.ReadTimeout):
        call()


def _expect_closed(call: Callable[[], requests.Response]) -> None:
    with pytest.raises(requests.ConnectionError):
        call()


def _expect_500(call: Callable[[], requests.Response]) -> None:
    answer = call()
    assert answer.status_code == 500
    assert answer.text.startswith("<html>")


def _expect_firewall(call: Callable[[], requests.Response]) -> None:
    answer = call()
    assert answer.status_code == 400
    assert "400 Request Blocked" in answer.text
    assert answer.headers["Content-Type"].startswith("text/html")


def _expect_malformed(call: Callable[[], requests.Response]) -> None:
    answer = call()
    assert answer.status_code == 200
    with pytest.raises(ValueError):
        answer.json()
    assert answer.text.startswith('{"ord_no":')


def _expect_429(call: Callable[[], requests.Response]) -> None:
    answer = call()
    assert answer.status_code == 429
    assert answer.json()["return_code"] == 5
    assert "[1700:" in answer.json()["return_msg"]
    assert "API ID=kt10003" in answer.json()["return_msg"]


def _expect_1999(call: Callable[[], requests.Response]) -> None:
    answer = call()
    assert answer.status_code == 200
    assert answer.json() == {
        "return_code": 1,
        "return_msg": "[1999:예기치 못한 에러가 발생했습니다]",
    }


FAULTS = [
    (FaultKind.DELAY, True, _expect_delay),
    (FaultKind.CLOSE_BEFORE, False, _expect_closed),
    (FaultKind.CLOSE_AFTER, True, _expect_closed),
    (FaultKind.HTTP_500, True, _expect_500),
    (FaultKind.FIREWALL_400, False, _expect_firewall),
    (FaultKind.MALFORMED_JSON, True, _expect_malformed),
    (FaultKind.HTTP_429, False, _expect_429),
    (FaultKind.SERVER_ERROR_1999, True, _expect_1999),
]


@pytest.mark.parametrize(("kind", "processed", "expect"), FAULTS, ids=[f[0].value for f in FAULTS])
def test_each_fault_answers_as_scripted_and_processes_only_when_it_says(
    client: Client,
    server: SimServer,
    kind: FaultKind,
    processed: bool,
    expect: Callable[[Callable[[], requests.Response]], None],
) -> None:
    assert kind.processed is processed
    ord_no = client.buy(10)
    server.inject(Fault(kind, api_id="kt10003", delay=0.3))
    body = {"dmst_stex_tp": "KRX", "orig_ord_no": ord_no, "stk_cd": "005930", "cncl_qty": "0"}
    expect(lambda: client.post("kt10003", body, timeout=0.1 if kind is FaultKind.DELAY else 5))
    wait_for(lambda: len(server.log) == 3)
    assert server.wait_idle()  # a delayed answer is written (into a closed connection)
    call = server.log[-1]
    assert (call.api_id, call.fault, call.body) == ("kt10003", kind, body)
    assert (call.outcome == "ok") is processed
    assert call.processed is processed
    truth = server.truth(ord_no)
    assert truth.leaves == (0 if processed else 10)
    # The fault was used up: the same request now gets the ordinary answer.
    again = client.tr("kt10003", body)
    assert again["return_code"] == (20 if processed else 0)


def test_faults_match_their_api_id_and_count_down(client: Client, server: SimServer) -> None:
    server.inject(Fault(FaultKind.SERVER_ERROR_1999, api_id="kt10001", times=2))
    assert client.tr("kt10000", order_body())["return_code"] == 0
    assert client.tr("kt10001", order_body())["return_code"] == 1
    assert client.tr("kt10001", order_body())["return_code"] == 1
    assert client.tr("kt10001", order_body())["return_code"] == 0
    assert len(server.exchange.orders) == 4  # 1999 after processing: every order was placed
    server.inject(Fault(FaultKind.FIREWALL_400, api_id=None))
    assert client.http.post(f"{client.url}/oauth2/token", json={}, timeout=5).status_code == 400
    assert client.tr("ka10075", OPEN_QUERY)["return_code"] == 0


def test_an_unexpected_error_answers_1999_and_the_server_keeps_serving(
    client: Client, server: SimServer
) -> None:
    def broken(_ticket: object) -> None:
        raise RuntimeError("boom")

    server.exchange.on_answer = broken
    answer = client.post("kt10000", order_body())
    assert answer.status_code == 200
    assert answer.json() == {
        "return_code": 1,
        "return_msg": "[1999:예기치 못한 에러가 발생했습니다]",
    }
    assert "Traceback" not in answer.text
    assert server.log[-1].outcome == "error"
    server.exchange.on_answer = None
    assert client.tr("ka10075", OPEN_QUERY)["return_code"] == 0


# -- sessions and days ---------------------------------------------------------------------------
def test_sessions_refuse_by_korea_time() -> None:
    fake = FakeTime(datetime(2025, 3, 3, 8, 0, tzinfo=KST))  # a Monday, 08:00
    with SimServer(
        market=False, sessions=True, clock=fake.clock, now=fake.now, token_ttl=timedelta(days=9)
    ) as server:
        client = Client(server)
        early = client.tr("kt10000", order_body())
        assert early == {"return_code": 20, "return_msg": "[2000](RC4057:장 시작 전입니다)"}
        fake.t = 2 * 3600.0  # 10:00
        ord_no = client.buy(10)
        fake.t = 7 * 3600.0 + 35 * 60  # 15:35, between the closing call and after hours
        between = client.cancel(ord_no, "0")
        assert between == {"return_code": 20, "return_msg": "[2000](RC4058:장이 종료되었습니다)"}
        fake.t = 7 * 3600.0 + 45 * 60  # 15:45, after-hours close-price session: accepted
        assert client.tr("kt10000", order_body())["return_code"] == 0
        fake.t = 10.5 * 3600.0  # 18:30
        late = client.cancel(ord_no, "0")
        assert late == {"return_code": 20, "return_msg": "[2000](RC4058:장이 종료되었습니다)"}
        assert "(RC4058:" in client.tr("kt10000", order_body())["return_msg"]
        assert server.truth(ord_no).leaves == 10
        fake.t = (5 * 24 + 2) * 3600.0  # Saturday 10:00
        weekend = client.tr("kt10000", order_body())
        assert weekend == {"return_code": 20, "return_msg": "[2000](RC4010:영업일이 아닙니다)"}


def test_a_korea_time_midnight_starts_a_new_day_with_fresh_order_numbers() -> None:
    fake = FakeTime(datetime(2025, 3, 3, 23, 59, 58, tzinfo=KST))
    with SimServer(market=False, clock=fake.clock, now=fake.now, rate=None) as server:
        client = Client(server)
        old = client.buy(10)
        first_exchange = server.exchange
        fake.t = 3.0  # 00:00:01 on Tuesday
        new = client.buy(3)
        assert (old, new) == ("0000001", "0000001")
        assert server.exchange is not first_exchange
        assert first_exchange.orders[old].state is OrderState.CANCELLED  # expired at midnight
        assert server.truth(new).qty == 3
        rows = [r for p in client.pages("ka10075", OPEN_QUERY) for r in p["oso"]]
        assert [r["oso_qty"] for r in rows] == ["3"]
        monday = client.tr("kt00007", detail_query("20250303"))["acnt_ord_cntr_prps_dtl"]
        assert [(r["ord_no"], r["ord_qty"], r["ord_remnq"]) for r in monday] == [
            ("0000001", "0000000010", "0000000000")
        ]
        tuesday = client.tr("kt00007", detail_query("20250304"))["acnt_ord_cntr_prps_dtl"]
        assert [(r["ord_no"], r["ord_qty"]) for r in tuesday] == [("0000001", "0000000003")]
        today_rows = client.tr("kt00007", {**detail_query(""), "ord_dt": ""})
        assert today_rows["acnt_ord_cntr_prps_dtl"] == tuesday  # "" is today, in Korea
        omitted = {k: v for k, v in detail_query("").items() if k != "ord_dt"}
        assert client.tr("kt00007", omitted)["acnt_ord_cntr_prps_dtl"] == tuesday
        assert client.cancel("0000002", "0")["return_msg"].startswith("[2000](RC4032:")


def test_the_market_walk_fills_resting_orders_along_the_wall_clock() -> None:
    def run() -> tuple[int, int, list[int]]:
        fake = FakeTime(MONDAY)
        with SimServer(seed=11, rate=None, clock=fake.clock, now=fake.now) as server:
            client = Client(server)
            ord_no = client.buy(300, 71_500)  # above the walk's start (71,000): marketable
            filled = [server.truth(ord_no).filled]
            for second in range(1, 6):
                fake.t = float(second)
                filled.append(server.truth(ord_no).filled)
            fake.t = 10 * 3600.0  # a long idle jump is capped, not replayed bar by bar
            later = client.tr("ka10075", OPEN_QUERY)
            assert later["return_code"] == 0
            truth = server.truth(ord_no)
            return truth.filled, truth.notional, filled

    first, again = run(), run()
    assert first == again  # the same seed, the same path
    filled, notional, steps = first
    assert steps == sorted(steps)
    assert steps[-1] > steps[0]
    assert 0 < filled <= 300
    assert notional <= filled * 71_500


# -- secrets -------------------------------------------------------------------------------------
def test_debug_log_repr_and_call_log_hold_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    appkey, secretkey = "APPKEY-7f3a9c", "SECRETKEY-b81d22"
    caplog.set_level(logging.DEBUG, logger="adapters.kiwoom.simserver")
    with SimServer(market=False) as server:
        client = Client(server)
        token = client.issue(appkey=appkey, secretkey=secretkey)["token"]
        client.token = token
        client.buy(1)
        client.tr("ka10075", OPEN_QUERY)
        client.http.post(
            f"{client.url}/oauth2/revoke",
            json={"appkey": appkey, "secretkey": secretkey, "token": token},
            timeout=5,
        )
        client.tr("ka10075", OPEN_QUERY)  # 8005 with the revoked token
        text = repr(server) + repr(server.log)
    records = [r for r in caplog.records if r.name == "adapters.kiwoom.simserver"]
    assert sum("kt10000" in r.getMessage() for r in records) == 1
    assert any("au10001" in r.getMessage() for r in records)
    for record in records:
        seen = record.getMessage() + repr(record.args)
        for secret in (appkey, secretkey, token, client.token, "Bearer", "authorization"):
            assert secret not in seen
    for secret in (appkey, secretkey, token):
        assert secret not in text


# -- the command line ----------------------------------------------------------------------------
def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_cli_refuses_a_public_host_without_public() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert run_sim_server(_args("--host", "0.0.0.0"), out, err) == 2
    assert "--public" in err.getvalue()
    assert out.getvalue() == ""
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert is_loopback("[::1]") and is_loopback(" LocalHost ")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.com")


def test_cli_prints_the_base_urls_first_and_stops_cleanly_on_sigterm() -> None:
    code = (
        "import sys, argparse\n"
        "from adapters.cli.sim_server import add_arguments, run_sim_server\n"
        "p = argparse.ArgumentParser(); add_arguments(p)\n"
        "sys.exit(run_sim_server(p.parse_args(sys.argv[1:]), sys.stdout, sys.stderr))\n"
    )
    argv = [sys.executable, "-c", code, "--rate", "none", "--no-market", "--page-size", "2"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        ws_url = proc.stdout.readline().strip()  # the real-time feed's, second
        assert url.startswith("http://127.0.0.1:")
        assert ws_url.startswith("ws://127.0.0.1:") and ws_url.count("/") == 2
        body = {"grant_type": "client_credentials", "appkey": "a", "secretkey": "b"}
        answer = requests.post(url + "/oauth2/token", json=body, timeout=5).json()
        assert answer["return_code"] == 0
        with connect(ws_url + "/api/dostk/websocket") as ws:
            ws.send(json.dumps({"trnm": "LOGIN", "token": answer["token"]}))
            assert json.loads(ws.recv(timeout=5))["return_code"] == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
