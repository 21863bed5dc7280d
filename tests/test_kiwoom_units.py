"""Pure parts of the Kiwoom adapter: error classification, base URLs, pacing, parsing, secrets."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from adapters.kiwoom.auth import Credentials, Token, parse_expires_dt
from adapters.kiwoom.client import OpenOrder, OrderDetail, parse_number, parse_price, plain_code
from adapters.kiwoom.errors import (
    AuthError,
    ConfigError,
    InputError,
    KiwoomError,
    OrderRejected,
    Outcome,
    RateLimited,
    ServerError,
    ServerFault,
    TokenInvalid,
)
from adapters.kiwoom.pacing import Pacer, allowed_rate_in
from adapters.kiwoom.transport import (
    MOCK_URL,
    REAL_URL,
    Answer,
    check_base_url,
    classify,
    embedded_code,
)
from engine import Side


# -- docs/kiwoom.md, "Answer codes": what each answer means ----------------------------------------
@pytest.mark.parametrize(
    ("return_code", "message", "status", "cls", "code", "outcome"),
    [
        (
            3,
            "인증에 실패했습니다[8005:Token이 유효하지 않습니다]",
            200,
            TokenInvalid,
            "8005",
            Outcome.NOT_PROCESSED,
        ),
        (
            5,
            "허용된 요청 개수를 초과하였습니다"
            "[1700:허용된 요청 개수를 초과하였습니다. 유량=5, API ID=kt10003]",
            429,
            RateLimited,
            "1700",
            Outcome.NOT_PROCESSED,
        ),
        (5, "[1702:그룹 유량 초과]", 429, RateLimited, "1702", Outcome.NOT_PROCESSED),
        (
            20,
            "[2000](RC4033:정정/취소할 수량이 없습니다)",
            200,
            OrderRejected,
            "RC4033",
            Outcome.DEFINITIVE,
        ),
        (
            20,
            "모의투자 [2000](RC4058:장이 종료되었습니다)",
            200,
            OrderRejected,
            "RC4058",
            Outcome.DEFINITIVE,
        ),
        (20, "[2000](800033:매도가능수량 부족)", 200, OrderRejected, "800033", Outcome.DEFINITIVE),
        (
            2,
            "[1511:필수 입력 값에 값이 존재하지 않습니다(cncl_qty)]",
            200,
            InputError,
            "1511",
            Outcome.DEFINITIVE,
        ),
        (5, "입력 값이 올바르지 않습니다", 200, InputError, "", Outcome.DEFINITIVE),
        (1, "[1999:예기치 못한 에러가 발생했습니다]", 200, ServerFault, "1999", Outcome.UNKNOWN),
        (3, "[8001:App Key 검증에 실패했습니다]", 200, AuthError, "8001", Outcome.NOT_PROCESSED),
        (7, "무언가 새로운 오류", 200, ServerFault, "", Outcome.UNKNOWN),
        # a code given as the top-level return_code itself (docs/kiwoom.md, "Answer codes")
        (8005, "Token이 유효하지 않습니다", 200, TokenInvalid, "8005", Outcome.NOT_PROCESSED),
        (
            1700,
            "허용된 요청 개수를 초과하였습니다",
            200,
            RateLimited,
            "1700",
            Outcome.NOT_PROCESSED,
        ),
        (1999, "예기치 못한 에러", 200, ServerFault, "1999", Outcome.UNKNOWN),
        # under HTTP 5xx only "stopped before processing" is believed; the rest is unknown
        (5, "입력 값이 올바르지 않습니다", 500, ServerError, "", Outcome.UNKNOWN),
        (
            20,
            "[2000](RC4033:정정/취소할 수량이 없습니다)",
            503,
            ServerError,
            "RC4033",
            Outcome.UNKNOWN,
        ),
        (3, "[8005:Token이 유효하지 않습니다]", 502, TokenInvalid, "8005", Outcome.NOT_PROCESSED),
        (
            5,
            "[1700:허용된 요청 개수를 초과하였습니다]",
            503,
            RateLimited,
            "1700",
            Outcome.NOT_PROCESSED,
        ),
    ],
)
def test_classify_follows_section_7(
    return_code: int,
    message: str,
    status: int,
    cls: type[KiwoomError],
    code: str,
    outcome: Outcome,
) -> None:
    error = classify("kt10003", return_code, message, status)
    assert type(error) is cls
    assert error.code == code
    assert error.outcome is outcome
    assert error.api_id == "kt10003" and error.return_code == return_code
    assert code in str(error) and outcome.value in str(error)
    assert error.http_status == status


def test_return_code_5_without_a_17xx_code_is_not_a_throttle() -> None:
    error = classify("kt10003", 5, "[1517:입력 값 형식이 올바르지 않습니다]", 200)
    assert isinstance(error, InputError) and not error.safe_to_resend


def test_the_rate_named_by_a_1700_answer_is_read() -> None:
    error = classify(
        "kt10003", 5, "[1700:허용된 요청 개수를 초과하였습니다. 유량=3, API ID=kt10003]", 429
    )
    assert isinstance(error, RateLimited) and error.allowed_rate == 3
    assert allowed_rate_in("no rate here") is None
    assert allowed_rate_in("유량 = 12") == 12


def test_embedded_code_prefers_the_rc_code_inside_2000() -> None:
    assert embedded_code("[2000](RC4042:정정/취소 가능수량을 초과하였습니다)") == "RC4042"
    assert embedded_code("[8005:Token이 유효하지 않습니다]") == "8005"
    assert embedded_code("정상") == ""


# -- where tokens may go ---------------------------------------------------------------------------
def test_only_kiwoom_hosts_and_opted_in_loopback_are_accepted() -> None:
    assert check_base_url("https://api.kiwoom.com/") == REAL_URL
    assert check_base_url("https://mockapi.kiwoom.com") == MOCK_URL
    assert check_base_url("http://127.0.0.1:8080", allow_loopback=True) == "http://127.0.0.1:8080"
    assert check_base_url("http://localhost:9", allow_loopback=True) == "http://localhost:9"
    assert check_base_url("http://[::1]:9", allow_loopback=True) == "http://[::1]:9"
    for refused, kwargs in [
        ("http://127.0.0.1:8080", {}),  # loopback without the opt-in
        ("http://api.kiwoom.com", {}),  # no TLS
        ("https://api.kiwoom.com:8443", {}),
        ("https://api.kiwoom.com.evil.example", {}),
        ("https://example.com", {"allow_loopback": True}),
        ("http://10.0.0.5:80", {"allow_loopback": True}),
        ("https://user:pw@api.kiwoom.com", {}),
        ("https://api.kiwoom.com/oauth2/token", {}),
        ("ftp://127.0.0.1", {"allow_loopback": True}),
    ]:
        with pytest.raises(ConfigError):
            check_base_url(refused, **kwargs)


# -- pacing ---------------------------------------------------------------------------------------
class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_pacer_spaces_calls_per_api_id() -> None:
    t = FakeTime()
    pacer = Pacer({"*": 5}, margin=0.0, clock=t.clock, sleep=t.sleep)
    starts = []
    for _ in range(6):
        pacer.acquire("kt10003")
        starts.append(t.now)
    assert [round(b - a, 9) for a, b in itertools.pairwise(starts)] == [0.2] * 5
    before = t.now
    pacer.acquire("ka10075")  # another api-id has its own slots
    assert t.now == before


class LateTime(FakeTime):
    """A sleep that wakes ``late`` seconds after it was asked to (a loaded machine)."""

    def __init__(self, late: float) -> None:
        super().__init__()
        self.late = late

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds + self.late)
        self.late = 0.0  # only the first wake-up is late


def test_a_late_wake_up_never_squeezes_the_next_call_closer_than_the_interval() -> None:
    t = LateTime(late=0.05)
    pacer = Pacer({"*": 5}, margin=0.0, clock=t.clock, sleep=t.sleep)
    starts = []
    for _ in range(4):
        pacer.acquire("kt10003")
        starts.append(t.now)
    gaps = [round(b - a, 9) for a, b in itertools.pairwise(starts)]
    assert gaps == [0.25, 0.2, 0.2]  # the late call pushes the next one, never less than 0.2


def test_pacer_learns_a_lower_rate_and_backs_off() -> None:
    t = FakeTime()
    pacer = Pacer({"*": 5}, margin=0.0, clock=t.clock, sleep=t.sleep)
    pacer.learn("kt10003", 2)
    assert pacer.rate("kt10003") == 2 and pacer.rate("kt10000") == 5
    pacer.learn("kt10003", 9)  # never faster than already known
    assert pacer.rate("kt10003") == 2
    pacer.acquire("kt10003")
    pacer.back_off("kt10003", 1.0)
    start = t.now
    pacer.acquire("kt10003")
    assert t.now - start == pytest.approx(1.0)


def test_pacer_margin_and_bad_rates() -> None:
    pacer = Pacer({"*": 5, "ka10075": None}, margin=0.02)
    assert pacer.interval("kt10003") == pytest.approx(0.204)
    assert pacer.interval("ka10075") == 0.0
    for bad in (0, -1, True, "5"):
        with pytest.raises(ValueError):
            Pacer({"*": bad})  # type: ignore[dict-item]
    with pytest.raises(ValueError):
        Pacer(margin=1.5)


# -- reading Kiwoom's values ---
def test_numbers_codes_and_prices() -> None:
    assert parse_number("000000000012") == 12
    assert parse_number("+5") == 5
    assert parse_number("") == 0
    assert parse_price("-70100") == 70100 and parse_price("+70100") == 70100
    assert plain_code("A005930") == "005930" and plain_code("005930") == "005930"
    for bad in ("-3", "1.5", "12a", None):
        with pytest.raises(InputError):
            parse_number(bad)
    for bad in ("KRX:005930", "A0059", "", 5930):
        with pytest.raises(InputError):
            plain_code(bad)


def test_status_rows_are_read_from_kiwoom_fields() -> None:
    row = OpenOrder.from_kiwoom(
        {
            "ord_no": "0000140",
            "orig_ord_no": "0000000",
            "stk_cd": "A005930",
            "ord_stt": "체결",
            "ord_qty": "000000000010",
            "ord_pric": "000000070000",
            "oso_qty": "000000000006",
            "cntr_qty": "000000000004",
            "io_tp_nm": "+매수",
            "stex_tp": "1",
            "sor_yn": "N",
        }
    )
    assert (row.ord_no, row.orig_ord_no, row.stk_cd, row.side) == (
        "0000140",
        "",
        "005930",
        Side.BUY,
    )
    assert (row.qty, row.price, row.open_qty, row.filled_qty) == (10, 70000, 6, 4)
    detail = OrderDetail.from_kiwoom(
        {
            "ord_no": "0000141",
            "ori_ord": "0000140",
            "stk_cd": "A005930",
            "io_tp_nm": "매수취소",
            "mdfy_cncl": "취소",
            "acpt_tp": "확인",
            "ord_qty": "000000000006",
            "ord_uv": "0",
            "cnfm_qty": "000000000006",
            "cntr_qty": "0",
            "cntr_uv": "0",
            "ord_remnq": "0",
            "dmst_stex_tp": "KRX",
        }
    )
    assert (detail.kind, detail.orig_ord_no, detail.confirmed_qty, detail.status) == (
        "취소",
        "0000140",
        6,
        "확인",
    )
    with pytest.raises(InputError):
        OrderDetail.from_kiwoom({"ord_no": "0000141", "mdfy_cncl": "무엇", "stk_cd": "005930"})


# -- secrets --------------------------------------------------------------------------------------
def test_expires_dt_is_korea_time_on_any_host() -> None:
    at = parse_expires_dt("20261125153000")
    assert at == datetime(2026, 11, 25, 6, 30, tzinfo=UTC)
    for bad in ("2026112515300", "20261345153000", 20261125153000, None):
        with pytest.raises(AuthError):
            parse_expires_dt(bad)


def test_credentials_and_tokens_hide_their_values(monkeypatch: pytest.MonkeyPatch) -> None:
    creds = Credentials("APPKEY-secret-1", "SECRET-secret-2")
    token = Token("TOKEN-secret-3", parse_expires_dt("20261125153000"))
    answer = Answer("au10001", {"token": "TOKEN-secret-4", "return_code": 0})
    for text in (repr(creds), str(creds), repr(token), str(token), repr(answer), str(answer)):
        assert "secret-" not in text
    monkeypatch.setenv("KIWOOM_APPKEY", "from-env-a")
    monkeypatch.setenv("KIWOOM_SECRETKEY", "from-env-s")
    env = Credentials.resolve()
    assert (env.appkey.reveal(), env.secretkey.reveal()) == ("from-env-a", "from-env-s")
    monkeypatch.delenv("KIWOOM_SECRETKEY")
    with pytest.raises(ConfigError) as err:
        Credentials.resolve()
    assert "KIWOOM_SECRETKEY" in str(err.value) and "from-env" not in str(err.value)
