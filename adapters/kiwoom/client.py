"""The Kiwoom REST client: every TR through pacing, tokens and one transport.

:meth:`KiwoomClient.call` is the machinery every TR goes through: it waits for the api-id's
pacing slot, attaches a token, sends, and on a throttled answer (429/1700) pauses and sends
again a bounded number of times; on 8005 it re-issues the token once and sends again. Both are
safe because the server did not act on such a request. Nothing else is ever re-sent: an unknown
outcome is raised as it is, for the caller to reconcile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, TypeVar

import attrs

from adapters.kiwoom.auth import Credentials, TokenManager
from adapters.kiwoom.errors import (
    ConfigError,
    InputError,
    KiwoomError,
    Outcome,
    PagingError,
    RateLimited,
    TokenInvalid,
    TokenUnavailable,
)
from adapters.kiwoom.pacing import MOCK_RATES, REAL_RATES, Pacer
from adapters.kiwoom.secret import Secret
from adapters.kiwoom.transport import DEFAULT_MAX_ANSWER, REAL_URL, USER_AGENT, Answer, Transport
from engine import Side
from engine.decision import parse_cancel_qty

__all__ = [
    "API_PATHS",
    "KiwoomClient",
    "OpenOrder",
    "OrderAnswer",
    "OrderDetail",
    "parse_number",
    "parse_price",
    "plain_code",
]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

ORDER_PATH: Final = "/api/dostk/ordr"
ACCOUNT_PATH: Final = "/api/dostk/acnt"
#: The path of each TR this client speaks; the ``api-id`` header chooses the operation.
API_PATHS: Final[Mapping[str, str]] = {
    "kt10000": ORDER_PATH,
    "kt10001": ORDER_PATH,
    "kt10002": ORDER_PATH,
    "kt10003": ORDER_PATH,
    "ka10075": ACCOUNT_PATH,
    "kt00007": ACCOUNT_PATH,
}
NO_ORDER: Final = "0000000"
#: Pages one status read follows at most by default (each page holds tens to hundreds of rows).
MAX_PAGES: Final = 1_000


# -- reading Kiwoom's values --------------------------------------------------------------------
def parse_number(value: object, field: str = "value") -> int:
    """Read a zero-padded, possibly ``+``-signed count (``"000000000010"``) as an int >= 0."""
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, str):
        digits = text[1:] if text[:1] == "+" else text
        if digits.isascii() and digits.isdigit():
            return int(digits)
        if text == "":
            return 0
    raise InputError(f"{field} is not a count: {value!r}")


def parse_price(value: object, field: str = "price") -> int:
    """Read a price; a leading ``+``/``-`` marks the direction of the move, not the sign."""
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, str) and text[:1] in ("+", "-"):
        text = text[1:]
    return parse_number(text, field)


def plain_code(value: object) -> str:
    """Return the plain stock code of ``A005930`` or ``005930`` (``005930``)."""
    if not isinstance(value, str):
        raise InputError(f"a stock code is a string, not {value!r}")
    text = value.strip()
    if len(text) == 7 and text[0] == "A":
        text = text[1:]
    if len(text) != 6 or not text.isascii() or not text.isalnum():
        raise InputError(f"not a stock code: {value!r}")
    return text


def _ord_no(value: object, field: str = "ord_no") -> str:
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit() and len(text) <= 7:
            return text.zfill(7)
    raise InputError(f"{field} is not an order number: {value!r}")


def _signed_count(value: object, field: str) -> int:
    """Read an echoed quantity that may carry a sign (``"-00000000004"``) as its size."""
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, str) and text[:1] == "-":
        text = text[1:]
    return parse_number(text, field)


_T = TypeVar("_T")


def _echoed(
    body: Mapping[str, Any],
    field: str,
    read: Callable[[object, str], _T],
    api_id: str,
    default: _T,
) -> _T:
    """Read a field an accepted order TR echoes; an odd value is logged, never raised."""
    value = body.get(field)
    if value is None or value == "":
        return default
    try:
        return read(value, field)
    except InputError:
        log.warning("%s accepted, but its %s is unreadable: %r", api_id, field, value)
        return default


def _side(text: object) -> Side:
    if isinstance(text, str):
        if "매수" in text:
            return Side.BUY
        if "매도" in text:
            return Side.SELL
    raise InputError(f"neither a buy nor a sell: {text!r}")


# -- answers ------------------------------------------------------------------------------------
@attrs.frozen
class OrderAnswer:
    """kt10000-kt10003's answer: the new ``ord_no``, the chain's root and the quantity echoed."""

    ord_no: str
    base_orig_ord_no: str = ""
    qty: int = 0
    exchange: str = ""
    message: str = ""


@attrs.frozen
class OpenOrder:
    """One row of ka10075 (미체결): an order with unfilled shares."""

    ord_no: str
    orig_ord_no: str
    stk_cd: str
    side: Side
    qty: int
    price: int
    open_qty: int
    filled_qty: int
    status: str
    exchange: str

    @classmethod
    def from_kiwoom(cls, row: Mapping[str, Any]) -> OpenOrder:
        """Read one ``oso`` row."""
        venue = {"1": "KRX", "2": "NXT"}.get(str(row.get("stex_tp", "1")), "KRX")
        if str(row.get("sor_yn", "N")).upper() == "Y":
            venue = "SOR"
        orig = _ord_no(row.get("orig_ord_no") or NO_ORDER, "orig_ord_no")
        return cls(
            ord_no=_ord_no(row.get("ord_no")),
            orig_ord_no="" if orig == NO_ORDER else orig,
            stk_cd=plain_code(row.get("stk_cd")),
            side=_side(row.get("io_tp_nm")),
            qty=parse_number(row.get("ord_qty"), "ord_qty"),
            price=parse_price(row.get("ord_pric", "0"), "ord_pric"),
            open_qty=parse_number(row.get("oso_qty"), "oso_qty"),
            filled_qty=parse_number(row.get("cntr_qty", "0"), "cntr_qty"),
            status=str(row.get("ord_stt", "")),
            exchange=venue,
        )


@attrs.frozen
class OrderDetail:
    """One row of kt00007 (주문체결내역상세): an order, a modify or a cancel of the day.

    ``kind`` is ``""`` for a new order, ``"정정"`` for a modify (its own order number, holding the
    shares it moved) and ``"취소"`` for a cancel (``confirmed_qty`` the shares it cancelled).
    """

    ord_no: str
    orig_ord_no: str
    stk_cd: str
    side: Side
    kind: str
    status: str
    qty: int
    price: int
    confirmed_qty: int
    filled_qty: int
    fill_price: int
    open_qty: int
    exchange: str

    @classmethod
    def from_kiwoom(cls, row: Mapping[str, Any]) -> OrderDetail:
        """Read one ``acnt_ord_cntr_prps_dtl`` row."""
        orig = _ord_no(row.get("ori_ord") or NO_ORDER, "ori_ord")
        kind = str(row.get("mdfy_cncl", "")).strip()
        if kind not in ("", "정정", "취소"):
            raise InputError(f"mdfy_cncl is neither 정정 nor 취소: {kind!r}")
        return cls(
            ord_no=_ord_no(row.get("ord_no")),
            orig_ord_no="" if orig == NO_ORDER else orig,
            stk_cd=plain_code(row.get("stk_cd")),
            side=_side(row.get("io_tp_nm")),
            kind=kind,
            status=str(row.get("acpt_tp", "")).strip(),
            qty=parse_number(row.get("ord_qty"), "ord_qty"),
            price=parse_price(row.get("ord_uv", "0"), "ord_uv"),
            confirmed_qty=parse_number(row.get("cnfm_qty", "0"), "cnfm_qty"),
            filled_qty=parse_number(row.get("cntr_qty", "0"), "cntr_qty"),
            fill_price=parse_price(row.get("cntr_uv", "0"), "cntr_uv"),
            open_qty=parse_number(row.get("ord_remnq", "0"), "ord_remnq"),
            exchange=str(row.get("dmst_stex_tp", "KRX")).strip() or "KRX",
        )


def _qty_text(qty: int | str, field: str, *, zero_means_all: bool) -> str:
    value = parse_cancel_qty(qty)
    if value is None or (value == 0 and not zero_means_all):
        raise InputError(f"{field} must be 1-12 digits{' (0 = all)' if zero_means_all else ''}")
    return str(value)


def _check_exchange(exchange: str) -> str:
    if exchange not in ("KRX", "NXT", "SOR"):
        raise InputError(f"dmst_stex_tp is KRX, NXT or SOR, not {exchange!r}")
    return exchange


class KiwoomClient:
    """A client of Kiwoom's REST API (real, mock, or a loopback simulator).

    ``base_url`` is :data:`REAL_URL`, :data:`MOCK_URL` or, with ``allow_loopback=True``, a local
    simulator such as ``order-engine sim-server``; any other host is refused. Credentials come
    from the arguments or ``KIWOOM_APPKEY`` / ``KIWOOM_SECRETKEY``. ``rates`` (calls per second
    per api-id, ``"*"`` for the rest) default to 5/s on real and 1/s on mock. A throttled call is
    sent again after ``throttle_pause`` seconds, at most ``throttle_retries`` times.
    ``deadline`` bounds each HTTP call from connect to the last byte (default: the sum of
    ``timeout``), ``max_answer`` the bytes of an answer (8 MiB) and ``max_pages`` the pages one
    status read follows (1,000). ``reissue_interval``: see :class:`TokenManager`.
    Use it as a context manager, or call :meth:`close` (which revokes the token).
    """

    def __init__(
        self,
        base_url: str = REAL_URL,
        *,
        appkey: str | None = None,
        secretkey: str | None = None,
        allow_loopback: bool = False,
        rates: Mapping[str, float | None] | None = None,
        pacing_margin: float = 0.02,
        timeout: tuple[float, float] = (3.05, 10.0),
        deadline: float | None = None,
        max_answer: int = DEFAULT_MAX_ANSWER,
        max_pages: int = MAX_PAGES,
        throttle_retries: int = 3,
        throttle_pause: float = 1.0,
        refresh_margin: timedelta = timedelta(minutes=10),
        reissue_interval: float = 60.0,
        user_agent: str = USER_AGENT,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        pacer: Pacer | None = None,
    ) -> None:
        if type(throttle_retries) is not int or throttle_retries < 0:
            raise ConfigError(f"throttle_retries must be an int >= 0, not {throttle_retries!r}")
        if not throttle_pause >= 0:
            raise ConfigError(f"throttle_pause must be >= 0 seconds, not {throttle_pause!r}")
        if type(max_pages) is not int or max_pages < 1:
            raise ConfigError(f"max_pages must be an int >= 1, not {max_pages!r}")
        credentials = Credentials.resolve(appkey, secretkey)
        self.transport = Transport(
            base_url,
            allow_loopback=allow_loopback,
            timeout=timeout,
            deadline=deadline,
            max_answer=max_answer,
            user_agent=user_agent,
        )
        default_rates = MOCK_RATES if self.transport.is_mock else REAL_RATES
        self.pacer = pacer or Pacer(
            rates if rates is not None else default_rates, margin=pacing_margin
        )
        self.tokens = TokenManager(
            self.transport,
            credentials,
            refresh_margin=refresh_margin,
            reissue_interval=reissue_interval,
            now=now,
        )
        self.max_pages = max_pages
        self.throttle_retries = throttle_retries
        self.throttle_pause = float(throttle_pause)
        self.throttled = 0  # throttled answers seen (each was paused and sent again)
        self.calls = 0  # HTTP requests sent for TRs (not counting token requests)

    @property
    def base_url(self) -> str:
        """Return the base URL requests go to."""
        return self.transport.base_url

    def __repr__(self) -> str:
        return f"KiwoomClient({self.base_url!r})"

    def __enter__(self) -> KiwoomClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Revoke the token (au10002) and close the connections."""
        try:
            self.tokens.revoke()
        finally:
            self.transport.close()

    # -- the machinery -------------------------------------------------------------------------
    def call(self, api_id: str, body: dict[str, Any], *, cont_key: str | None = None) -> Answer:
        """Send one TR (paced, with a token) and return its answer; raise a KiwoomError.

        Sends again only what the server certainly did not act on: a throttled call (after a
        pause, at most ``throttle_retries`` times) and a call refused for its token (8005,
        once, with a new token).
        """
        path = API_PATHS.get(api_id)
        if path is None:
            raise ConfigError(f"unknown api-id {api_id!r}; known: {sorted(API_PATHS)}")
        throttles = 0
        reissued = False
        while True:
            self.pacer.acquire(api_id)
            token = self._token_for(api_id)
            self.calls += 1
            try:
                return self.transport.post(path, api_id, body, token=token, cont_key=cont_key)
            except RateLimited as exc:
                self.throttled += 1
                if exc.allowed_rate is not None:
                    self.pacer.learn(api_id, exc.allowed_rate)
                if throttles >= self.throttle_retries:
                    raise
                throttles += 1
                log.info("%s throttled (%s); pausing %.2f s", api_id, exc.code, self.throttle_pause)
                self.pacer.back_off(api_id, self.throttle_pause)
            except TokenInvalid:
                self.tokens.invalidate(token)
                if reissued:
                    raise
                reissued = True
                log.info("%s: token refused (8005); issuing a new one", api_id)

    def _token_for(self, api_id: str) -> Secret:
        """Return a token for sending ``api_id``; if none can be had, ``api_id`` was not sent.

        A failed au10001 (a timeout, say) has an unknown outcome for the token request, but the
        TR itself certainly did not leave: it is raised as :class:`TokenUnavailable`.
        """
        try:
            return self.tokens.token()
        except KiwoomError as exc:
            if exc.outcome is Outcome.NOT_PROCESSED:
                raise  # a refused key or a throttle: already says "not sent"
            failure = TokenUnavailable(
                f"no token ({type(exc).__name__}: {exc.message}); {api_id} was not sent",
                api_id=api_id,
                code=exc.code,
            )
        raise failure

    def call_pages(self, api_id: str, body: dict[str, Any], list_key: str) -> list[dict[str, Any]]:
        """Send a status TR and follow ``cont-yn``/``next-key`` to the last page; return all rows.

        ``cont-yn`` is read strictly (``Y`` or ``N``, any case and spacing; absent means ``N``).
        A page that fails, a ``cont-yn`` that is neither, a ``next-key`` seen before or more
        than ``max_pages`` pages raise: rows already read are never returned half-way, since a
        short list would look like the whole account.
        """
        rows: list[dict[str, Any]] = []
        cont_key: str | None = None
        seen: set[str] = set()
        for page in range(1, self.max_pages + 1):
            answer = self.call(api_id, body, cont_key=cont_key)
            rows_of = answer.body.get(list_key, [])
            if not isinstance(rows_of, list) or not all(isinstance(r, dict) for r in rows_of):
                raise InputError(f"{api_id}: {list_key} is not a list of rows", api_id=api_id)
            rows.extend(rows_of)
            # the header as received; an Answer built without it (a test double) has cont_yn
            flag = answer.cont_header.strip().upper() or ("Y" if answer.cont_yn else "N")
            if flag not in ("", "Y", "N"):
                raise PagingError(
                    f"{api_id}: page {page} says cont-yn {answer.cont_header[:20]!r}, neither Y "
                    "nor N; the list is incomplete",
                    api_id=api_id,
                )
            if flag != "Y":
                return rows
            key = answer.next_key
            if not key:
                raise PagingError(
                    f"{api_id}: page {page} says cont-yn Y without a next-key; the list is "
                    "incomplete",
                    api_id=api_id,
                )
            if key in seen:
                raise PagingError(
                    f"{api_id}: page {page} repeats the next-key {key[:40]!r} of an earlier "
                    "page (a loop); the list is incomplete",
                    api_id=api_id,
                )
            seen.add(key)
            cont_key = key
        raise PagingError(
            f"{api_id}: more than {self.max_pages} pages (max_pages); the list is incomplete",
            api_id=api_id,
        )

    # -- orders ----------------------------------------------------------------------------------
    def place(
        self,
        *,
        stk_cd: str,
        side: Side,
        qty: int,
        price: int,
        trde_tp: str = "0",
        exchange: str = "KRX",
    ) -> OrderAnswer:
        """Send a new order: kt10000 (buy) or kt10001 (sell); ``price`` 0 for market orders."""
        if not isinstance(side, Side):
            raise InputError(f"side must be a Side, not {side!r}")
        if type(price) is not int or price < 0:
            raise InputError(f"price must be an int >= 0, not {price!r}")
        body = {
            "dmst_stex_tp": _check_exchange(exchange),
            "stk_cd": plain_code(stk_cd),
            "ord_qty": _qty_text(qty, "ord_qty", zero_means_all=False),
            "ord_uv": str(price) if price else "",
            "trde_tp": str(trde_tp),
            "cond_uv": "",
        }
        api_id = "kt10000" if side is Side.BUY else "kt10001"
        return self._order_answer(self.call(api_id, body), "ord_qty")

    def modify(
        self, *, orig_ord_no: str, stk_cd: str, qty: int | str, price: int, exchange: str = "KRX"
    ) -> OrderAnswer:
        """Send a modify (kt10002) of ``qty`` shares (0 = all remaining) to ``price``."""
        if type(price) is not int or price <= 0:
            raise InputError(f"a modify needs a positive int price, not {price!r}")
        body = {
            "dmst_stex_tp": _check_exchange(exchange),
            "orig_ord_no": _ord_no(orig_ord_no, "orig_ord_no"),
            "stk_cd": plain_code(stk_cd),
            "mdfy_qty": _qty_text(qty, "mdfy_qty", zero_means_all=True),
            "mdfy_uv": str(price),
            "mdfy_cond_uv": "",
        }
        return self._order_answer(self.call("kt10002", body), "mdfy_qty")

    def cancel(
        self, *, orig_ord_no: str, stk_cd: str, qty: int | str, exchange: str = "KRX"
    ) -> OrderAnswer:
        """Send a cancel (kt10003) of ``qty`` shares (``"0"`` = all still open).

        The body is exactly the spec's: four strings, a 7-digit order number, ``cncl_qty`` "0"
        for all. This sends; it does not decide. Use :class:`adapters.kiwoom.KiwoomBroker` to
        ask the engine first.
        """
        if not (isinstance(orig_ord_no, str) and len(orig_ord_no) == 7 and orig_ord_no.isdigit()):
            raise InputError(f"orig_ord_no is a 7-digit string such as 0000140: {orig_ord_no!r}")
        body = {
            "dmst_stex_tp": _check_exchange(exchange),
            "orig_ord_no": orig_ord_no,
            "stk_cd": plain_code(stk_cd),
            "cncl_qty": _qty_text(qty, "cncl_qty", zero_means_all=True),
        }
        return self._order_answer(self.call("kt10003", body), "cncl_qty")

    @staticmethod
    def _order_answer(answer: Answer, qty_field: str) -> OrderAnswer:
        """Read an order TR's success: ``return_code 0`` **and** an order number.

        Without a readable order number the server may still have acted: the outcome is unknown
        (never "rejected", which would make sending again look safe). With one, the request was
        taken, and nothing else in the body can undo that: the echoed fields are read leniently.
        """
        body = answer.body
        try:
            ord_no = _ord_no(body.get("ord_no"))
        except InputError:
            ord_no = NO_ORDER
        if ord_no == NO_ORDER:
            # return_code 0 without an order number is not a success (docs/kiwoom.md, "Order TRs")
            raise KiwoomError(
                f"{answer.api_id} answered return_code 0 without a readable order number",
                api_id=answer.api_id,
                return_code=0,
            )
        return OrderAnswer(
            ord_no=ord_no,
            base_orig_ord_no=_echoed(body, "base_orig_ord_no", _ord_no, answer.api_id, ""),
            qty=_echoed(body, qty_field, _signed_count, answer.api_id, 0),
            exchange=str(body.get("dmst_stex_tp", "")),
            message=str(body.get("return_msg", "")),
        )

    # -- status ----------------------------------------------------------------------------------
    def open_orders(
        self,
        *,
        stk_cd: str | None = None,
        exchange: str = "0",
        on_bad_row: BadRow | None = None,
    ) -> list[OpenOrder]:
        """Return every open order (ka10075, all pages); ``stk_cd`` narrows to one code.

        A row that cannot be read raises :class:`InputError`, or, with ``on_bad_row``, is passed
        to it (with the error) and left out.
        """
        body = {
            "all_stk_tp": "0" if stk_cd is None else "1",
            "trde_tp": "0",
            "stk_cd": "" if stk_cd is None else plain_code(stk_cd),
            "stex_tp": exchange,
        }
        rows = self.call_pages("ka10075", body, "oso")
        return _read_rows(rows, OpenOrder.from_kiwoom, on_bad_row)

    def order_details(self, day: date, *, on_bad_row: BadRow | None = None) -> list[OrderDetail]:
        """Return every order, modify and cancel of ``day`` (kt00007, all pages).

        ``on_bad_row`` as for :meth:`open_orders`.
        """
        body = {
            "ord_dt": day.strftime("%Y%m%d"),
            "qry_tp": "1",
            "stk_bond_tp": "0",
            "sell_tp": "0",
            "stk_cd": "",
            "fr_ord_no": "",
            "dmst_stex_tp": "%",
        }
        rows = self.call_pages("kt00007", body, "acnt_ord_cntr_prps_dtl")
        return _read_rows(rows, OrderDetail.from_kiwoom, on_bad_row)


#: Told of a status row that could not be read: the row, and why.
BadRow = Callable[[Mapping[str, Any], InputError], None]


def _read_rows(
    rows: list[dict[str, Any]],
    read: Callable[[Mapping[str, Any]], _T],
    on_bad_row: BadRow | None,
) -> list[_T]:
    out: list[_T] = []
    for row in rows:
        try:
            out.append(read(row))
        except InputError as exc:
            if on_bad_row is None:
                raise
            on_bad_row(row, exc)
    return out
