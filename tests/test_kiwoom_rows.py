"""Status rows as Kiwoom documents them (sim-server) and as clients meet them (the row readers);
the server's listen backlog, bounded memory and refusal of bodies it cannot parse."""

from __future__ import annotations

import concurrent.futures
import json
import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from test_kiwoom_simserver import OPEN_QUERY, detail_query

from adapters.kiwoom.client import KiwoomClient, OpenOrder, OrderDetail, read_venue, row_code
from adapters.kiwoom.errors import InputError
from adapters.kiwoom.simserver import SimServer
from engine import Side

# The official field tables (Kiwoom's REST guide), in the documented order.
KA10075_FIELDS = [
    "acnt_no",
    "ord_no",
    "mang_empno",
    "stk_cd",
    "tsk_tp",
    "ord_stt",
    "stk_nm",
    "ord_qty",
    "ord_pric",
    "oso_qty",
    "cntr_tot_amt",
    "orig_ord_no",
    "io_tp_nm",
    "trde_tp",
    "tm",
    "cntr_no",
    "cntr_pric",
    "cntr_qty",
    "cur_prc",
    "sel_bid",
    "buy_bid",
    "unit_cntr_pric",
    "unit_cntr_qty",
    "tdy_trde_cmsn",
    "tdy_trde_tax",
    "ind_invsr",
    "stex_tp",
    "stex_tp_txt",
    "sor_yn",
    "stop_pric",
]
KT00007_FIELDS = [
    "ord_no",
    "stk_cd",
    "trde_tp",
    "crd_tp",
    "ord_qty",
    "ord_uv",
    "cnfm_qty",
    "acpt_tp",
    "rsrv_tp",
    "ord_tm",
    "ori_ord",
    "stk_nm",
    "io_tp_nm",
    "loan_dt",
    "cntr_qty",
    "cntr_uv",
    "ord_remnq",
    "comm_ord_tp",
    "mdfy_cncl",
    "cnfm_tm",
    "dmst_stex_tp",
    "cond_uv",
]
KT00007_NUMBERS = ("ord_qty", "ord_uv", "cnfm_qty", "cntr_qty", "cntr_uv", "ord_remnq", "cond_uv")

# The official examples' rows.
KA10075_EXAMPLE = {
    "acnt_no": "1234567890",
    "ord_no": "0000069",
    "mang_empno": "",
    "stk_cd": "005930",
    "tsk_tp": "",
    "ord_stt": "접수",
    "stk_nm": "삼성전자",
    "ord_qty": "1",
    "ord_pric": "0",
    "oso_qty": "1",
    "cntr_tot_amt": "0",
    "orig_ord_no": "0000000",
    "io_tp_nm": "+매수",
    "trde_tp": "시장가",
    "tm": "154113",
    "cntr_no": "",
    "cntr_pric": "0",
    "cntr_qty": "0",
    "cur_prc": "+74100",
    "sel_bid": "0",
    "buy_bid": "+74100",
    "unit_cntr_pric": "",
    "unit_cntr_qty": "",
    "tdy_trde_cmsn": "0",
    "tdy_trde_tax": "0",
    "ind_invsr": "",
    "stex_tp": "1",
    "stex_tp_txt": "KRX",
    "sor_yn": "N",
}
KT00007_EXAMPLE = {
    "ord_no": "0000050",
    "stk_cd": "A069500",
    "trde_tp": "시장가",
    "crd_tp": "보통매매",
    "ord_qty": "0000000001",
    "ord_uv": "0000000000",
    "cnfm_qty": "0000000000",
    "acpt_tp": "접수",
    "rsrv_tp": "",
    "ord_tm": "13:05:43",
    "ori_ord": "0000000",
    "stk_nm": "KODEX 200",
    "io_tp_nm": "현금매수",
    "loan_dt": "",
    "cntr_qty": "0000000001",
    "cntr_uv": "0000004900",
    "ord_remnq": "0000000000",
    "comm_ord_tp": "영웅문4",
    "mdfy_cncl": "",
    "cnfm_tm": "",
    "dmst_stex_tp": "KRX",
    "cond_uv": "0000000000",
}


@pytest.fixture
def server() -> Iterator[SimServer]:
    with SimServer(market=False, rate=None) as sim:
        yield sim


@pytest.fixture
def client(server: SimServer) -> Iterator[KiwoomClient]:
    with KiwoomClient(
        server.base_url, appkey="app", secretkey="sec", allow_loopback=True, rates={"*": None}
    ) as kiwoom:
        yield kiwoom


def _day_with_everything(server: SimServer, client: KiwoomClient) -> tuple[str, str, str, str]:
    """An order partly filled, a sell modified, a partial cancel: every kind of row."""
    buy = client.place(stk_cd="005930", side=Side.BUY, qty=10, price=70_000).ord_no
    sell = client.place(stk_cd="005930", side=Side.SELL, qty=5, price=72_000).ord_no
    server.trade("005930", 70_000, 4)
    moved = client.modify(orig_ord_no=sell, stk_cd="005930", qty=0, price=71_900).ord_no
    cancel = client.cancel(orig_ord_no=buy, stk_cd="005930", qty=2).ord_no
    return buy, sell, moved, cancel


def test_status_rows_carry_exactly_the_official_fields_in_their_documented_forms(
    server: SimServer, client: KiwoomClient
) -> None:
    buy, sell, moved, cancel = _day_with_everything(server, client)
    open_rows = client.call_pages("ka10075", dict(OPEN_QUERY), "oso")
    assert [r["ord_no"] for r in open_rows] == [buy, moved]
    for row in open_rows:
        assert list(row) == KA10075_FIELDS
        assert all(isinstance(v, str) for v in row.values())
    first = open_rows[0]
    assert (first["stk_cd"], first["ord_qty"], first["oso_qty"], first["cntr_qty"]) == (
        "005930",
        "10",
        "4",  # 10 - 4 filled - 2 cancelled
        "4",
    )
    assert (first["cntr_tot_amt"], first["cntr_pric"], first["unit_cntr_qty"]) == (
        "280000",
        "70000",
        "4",
    )
    assert first["cntr_no"] != "" and first["tm"].isdigit() and len(first["tm"]) == 6
    detail = client.call_pages("kt00007", detail_query(""), "acnt_ord_cntr_prps_dtl")
    by_no = {r["ord_no"]: r for r in detail}
    assert list(by_no) == [buy, sell, moved, cancel]
    for row in detail:
        assert list(row) == KT00007_FIELDS
        for name in KT00007_NUMBERS:
            assert len(row[name]) == 10 and row[name].isdigit(), (name, row[name])
        assert row["stk_cd"] == "A005930"
        assert len(row["ord_tm"]) == 8 and row["ord_tm"][2::3] == "::"
    assert (by_no[buy]["io_tp_nm"], by_no[buy]["trde_tp"], by_no[buy]["cntr_uv"]) == (
        "현금매수",
        "보통",
        "0000070000",
    )
    assert by_no[sell]["io_tp_nm"] == "현금매도"
    assert (by_no[moved]["mdfy_cncl"], by_no[moved]["io_tp_nm"]) == ("정정", "매도정정")
    assert (by_no[cancel]["mdfy_cncl"], by_no[cancel]["io_tp_nm"]) == ("취소", "매수취소")
    assert by_no[cancel]["cnfm_tm"][2::3] == "::"  # confirmed: it has a confirmation time


@pytest.mark.parametrize("ord_dt", ["", None])
def test_kt00007_ord_dt_empty_or_missing_is_today(
    server: SimServer, client: KiwoomClient, ord_dt: str | None
) -> None:
    placed = client.place(stk_cd="005930", side=Side.BUY, qty=1, price=70_000).ord_no
    body = detail_query("" if ord_dt is None else ord_dt)
    if ord_dt is None:
        del body["ord_dt"]
    rows = client.call_pages("kt00007", body, "acnt_ord_cntr_prps_dtl")
    assert [r["ord_no"] for r in rows] == [placed]
    other_day = client.call_pages("kt00007", detail_query("20000101"), "acnt_ord_cntr_prps_dtl")
    assert other_day == []


def test_readers_read_the_official_examples() -> None:
    opened = OpenOrder.from_kiwoom(KA10075_EXAMPLE)
    assert (opened.ord_no, opened.stk_cd, opened.side, opened.qty, opened.price) == (
        "0000069",
        "005930",
        Side.BUY,
        1,
        0,
    )
    assert (opened.open_qty, opened.filled_qty, opened.status, opened.exchange) == (
        1,
        0,
        "접수",
        "KRX",
    )
    detail = OrderDetail.from_kiwoom(KT00007_EXAMPLE)
    assert (detail.ord_no, detail.stk_cd, detail.side, detail.kind, detail.status) == (
        "0000050",
        "069500",
        Side.BUY,
        "",
        "접수",
    )
    assert (detail.qty, detail.filled_qty, detail.fill_price, detail.open_qty) == (1, 1, 4900, 0)
    assert (detail.orig_ord_no, detail.exchange) == ("", "KRX")


def test_readers_read_the_forms_seen_in_the_wild() -> None:
    wild_open = {
        **KA10075_EXAMPLE,
        "ord_no": "69",  # not padded
        "stk_cd": "A005930",
        "ord_qty": "000000000010",
        "oso_qty": "+000000000004",
        "cntr_qty": "6",
        "ord_pric": "-000000070100",
        "stex_tp": "NXT",
        "stex_tp_txt": "",
    }
    row = OpenOrder.from_kiwoom(wild_open)
    assert (row.ord_no, row.stk_cd, row.qty, row.open_qty, row.filled_qty, row.price) == (
        "0000069",
        "005930",
        10,
        4,
        6,
        70_100,
    )
    assert row.exchange == "NXT"
    assert OpenOrder.from_kiwoom({**KA10075_EXAMPLE, "stex_tp": "0", "sor_yn": "Y"}).exchange == (
        "SOR"
    )
    wild_detail = {
        **KT00007_EXAMPLE,
        "stk_cd": "Q500001",
        "ord_qty": "000000000003",
        "cnfm_qty": "3",
        "mdfy_cncl": "",
        "io_tp_nm": "-매도취소",  # the kind only in io_tp_nm
        "ori_ord": "0000049",
        "dmst_stex_tp": "nxt",
    }
    detail = OrderDetail.from_kiwoom(wild_detail)
    assert (detail.stk_cd, detail.qty, detail.confirmed_qty, detail.kind, detail.side) == (
        "500001",
        3,
        3,
        "취소",
        Side.SELL,
    )
    assert (detail.orig_ord_no, detail.exchange) == ("0000049", "NXT")
    assert OrderDetail.from_kiwoom({**KT00007_EXAMPLE, "mdfy_cncl": "매수정정"}).kind == "정정"


@pytest.mark.parametrize(
    "change",
    [
        {"mdfy_cncl": "바꿈"},
        {"stk_cd": "B005930"},
        {"ord_qty": "1.5"},
        {"ord_qty": "-0000000001"},
        {"io_tp_nm": "현금"},
        {"ord_no": "00000501"},
    ],
)
def test_readers_refuse_what_they_cannot_read(change: dict[str, str]) -> None:
    with pytest.raises(InputError):
        OrderDetail.from_kiwoom({**KT00007_EXAMPLE, **change})


def test_row_code_and_venue_helpers() -> None:
    assert [row_code(c) for c in ("005930", "A005930", "J123456", " Q500001 ")] == [
        "005930",
        "005930",
        "123456",
        "500001",
    ]
    with pytest.raises(InputError):
        row_code("X005930")
    assert [read_venue(*a) for a in [("1", "", "N"), ("2", "", ""), ("0", "통합", "Y")]] == [
        "KRX",
        "NXT",
        "SOR",
    ]
    assert read_venue("", "NXT", None) == "NXT"


# -- the server's resilience -------------------------------------------------------------------
def test_two_hundred_simultaneous_connections_are_all_answered(server: SimServer) -> None:
    body = json.dumps({"grant_type": "client_credentials", "appkey": "a", "secretkey": "s"})
    request = (
        f"POST /oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}"
    ).encode()
    sockets = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(200)]
    try:
        for sock in sockets:
            sock.sendall(request)

        def read(sock: socket.socket) -> bytes:
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks)

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(read, sockets))
    finally:
        for sock in sockets:
            sock.close()
    assert all(a.startswith(b"HTTP/1.1 200") for a in answers)
    assert all(b'"return_code":0' in a for a in answers)


def test_the_call_log_and_the_token_table_are_bounded() -> None:
    with SimServer(market=False, rate=None, log_limit=5, token_limit=3) as server:
        session = requests.Session()
        url = server.base_url
        tokens = []
        for _ in range(6):
            body = {"grant_type": "client_credentials", "appkey": "a", "secretkey": "s"}
            tokens.append(session.post(f"{url}/oauth2/token", json=body, timeout=5).json()["token"])
        assert len(server.log) == 5
        assert server.calls["au10001"] == 6

        def ask(token: str) -> int:
            headers = {"api-id": "ka10075", "authorization": f"Bearer {token}"}
            answer = session.post(f"{url}/api/dostk/acnt", json=dict(OPEN_QUERY), headers=headers)
            code: int = answer.json()["return_code"]
            return code

        assert [ask(t) for t in tokens] == [3, 3, 3, 0, 0, 0]  # the three oldest were evicted
        assert len(server.log) == 5
        assert server.log[-1].api_id == "ka10075"
        for n in range(50):
            headers = {"api-id": f"zz{n}", "authorization": f"Bearer {tokens[-1]}"}
            session.post(f"{url}/api/dostk/acnt", json={}, headers=headers, timeout=5)
        assert server.calls["(other)"] == 50
        assert len(server.calls) <= 4  # au10001, ka10075, (other): not one key per api-id


def test_a_body_nested_too_deeply_gets_an_error_envelope_and_a_log_record(
    server: SimServer, client: KiwoomClient, caplog: pytest.LogCaptureFixture
) -> None:
    token = client.tokens.token().reveal()
    deep = b"[" * 200_000 + b"]" * 200_000
    caplog.set_level(logging.WARNING, logger="adapters.kiwoom.simserver")
    answer = requests.post(
        server.base_url + "/api/dostk/ordr",
        data=deep,
        headers={"api-id": "kt10000", "authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert answer.status_code == 200
    data: dict[str, Any] = answer.json()
    assert data["return_code"] == 2 and data["return_msg"].startswith("[1517:")
    assert any("nested too deeply" in r.getMessage() for r in caplog.records)
    assert len(server.exchange.orders) == 0
    again = requests.post(
        server.base_url + "/oauth2/token", data=b'{"a":' * 100_000, timeout=10
    ).json()
    assert again["return_code"] == 2
