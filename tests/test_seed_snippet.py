"""Kiwoom's own ``fn_kt10003`` example runs unchanged against the simulator and cancels.

Only the host string is replaced (``https://api.kiwoom.com`` -> the simulator's base URL); the
snippet prints the status code, three headers and the JSON body, which are read back here.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from adapters.kiwoom.simserver import SimServer
from engine import OrderState

FIXTURE = Path(__file__).parent / "fixtures" / "seed_kt10003.py"
HOST = "'https://api.kiwoom.com'"
SEED_SHA256 = "ad68fd281855c3308053c099c8bc64da4bb4aa9486b97cf37a15d1351db5241d"


@pytest.fixture
def server() -> Iterator[SimServer]:
    with SimServer(market=False) as sim:
        yield sim


def load_snippet(base_url: str) -> Callable[..., None]:
    """Exec the fixture with only its host replaced; return its ``fn_kt10003``."""
    source = FIXTURE.read_text(encoding="utf-8")
    assert source.count(HOST) == 1
    namespace: dict[str, Any] = {"__name__": "seed_kt10003"}  # not __main__: no example run
    exec(compile(source.replace(HOST, f"'{base_url}'"), str(FIXTURE), "exec"), namespace)
    function: Callable[..., None] = namespace["fn_kt10003"]
    return function


def parse_printout(text: str) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """Read back what the snippet printed: the status code, the headers and the body."""
    match = re.fullmatch(r"Code: (\d+)\nHeader: (\{.*?\})\nBody: (\{.*\})\n", text, re.DOTALL)
    assert match is not None, text
    return int(match[1]), json.loads(match[2]), json.loads(match[3])


def test_the_fixture_is_kiwooms_example_code_verbatim() -> None:
    # SEED_SHA256 is the SHA-256 of the example's code block in Kiwoom's kt10003 page, measured
    # when the fixture was written: the pin keeps the fixture from drifting from Kiwoom's code.
    source = FIXTURE.read_text(encoding="utf-8")
    code = source[source.index("import requests\n") :]
    assert hashlib.sha256(code.encode("utf-8")).hexdigest() == SEED_SHA256


def test_seed_snippet_cancels_part_then_all_of_an_order(
    server: SimServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fn_kt10003 = load_snippet(server.base_url)
    url = server.base_url
    issued = requests.post(
        f"{url}/oauth2/token",
        json={"grant_type": "client_credentials", "appkey": "my-app", "secretkey": "my-secret"},
        timeout=5,
    ).json()
    token = issued["token"]
    placed = requests.post(
        f"{url}/api/dostk/ordr",
        headers={"api-id": "kt10000", "authorization": f"Bearer {token}"},
        json={
            "dmst_stex_tp": "KRX",
            "stk_cd": "005930",
            "ord_qty": "10",
            "ord_uv": "70000",
            "trde_tp": "0",
        },
        timeout=5,
    ).json()
    ord_no = placed["ord_no"]
    assert placed["return_code"] == 0
    capsys.readouterr()

    params = {"dmst_stex_tp": "KRX", "orig_ord_no": ord_no, "stk_cd": "005930", "cncl_qty": "4"}
    fn_kt10003(token, params)
    code, headers, body = parse_printout(capsys.readouterr().out)
    assert code == 200
    assert headers == {"next-key": "", "cont-yn": "N", "api-id": "kt10003"}
    assert body["return_code"] == 0
    assert body["cncl_qty"] == "000000000004"
    assert body["base_orig_ord_no"] == ord_no
    assert body["ord_no"] and body["ord_no"] != ord_no
    truth = server.truth(ord_no)
    assert (truth.cancelled, truth.leaves) == (4, 6)

    fn_kt10003(token, {**params, "cncl_qty": "0"})  # '0' 입력시 잔량 전부 취소
    code, _, body = parse_printout(capsys.readouterr().out)
    assert code == 200
    assert body["return_code"] == 0
    assert body["cncl_qty"] == "000000000006"
    truth = server.truth(ord_no)
    assert (truth.cancelled, truth.leaves, truth.state) == (10, 0, OrderState.CANCELLED)
