"""``order-engine cancel`` and ``order-engine open-orders`` against the simulator, on loopback."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime

import pytest

from adapters.cli.kiwoom_cli import EXIT
from adapters.cli.main import main
from adapters.kiwoom.client import KiwoomClient
from adapters.kiwoom.simserver import Fault, FaultKind, SimServer
from engine import Side

APPKEY = "cli-appkey-0c1d"
SECRET = "cli-secretkey-9e4f"
FAR_BELOW = 50_000  # a buy far below 005930's price: it rests


class Switch:
    """A session calendar the test opens and closes (the server answers RC4057/RC4058)."""

    def __init__(self) -> None:
        self.open = True

    def accepts_cancel(self, exchange: str, at: datetime) -> bool:
        return self.open


@pytest.fixture
def switch() -> Switch:
    return Switch()


@pytest.fixture
def server(switch: Switch) -> Iterator[SimServer]:
    with SimServer(seed=3, rate=None, market=False, page_size=2, sessions=switch) as srv:
        yield srv


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIWOOM_APPKEY", APPKEY)
    monkeypatch.setenv("KIWOOM_SECRETKEY", SECRET)


def place(server: SimServer, qty: int) -> str:
    with KiwoomClient(server.base_url, allow_loopback=True, rates={"*": None}) as client:
        return client.place(stk_cd="005930", side=Side.BUY, qty=qty, price=FAR_BELOW).ord_no


def cancel(server: SimServer, ord_no: str, *extra: str) -> int:
    argv = ["cancel", "--ord-no", ord_no, "--stk-cd", "005930", *extra]
    return main([*argv, "--base-url", server.base_url])


def test_an_allowed_cancel_is_sent_once_and_reported_accepted(
    server: SimServer, capsys: pytest.CaptureFixture[str]
) -> None:
    no = place(server, 10)
    assert cancel(server, no, "--qty", "4") == EXIT["accepted"] == 0
    out = capsys.readouterr().out
    assert f"order:    {no} 005930 BUY" in out and "open=10" in out
    assert "decision: allowed" in out and "sent:     kt10003 cncl_qty='4'" in out
    assert "outcome:  accepted, cancel number" in out
    assert server.calls["kt10003"] == 1 and server.truth(no).cancelled == 4
    # the rest, with "0": the engine read the first cancel back from the account
    assert cancel(server, no) == 0
    assert "cncl_qty='0'" in capsys.readouterr().out
    assert server.truth(no).cancelled == 10 and server.calls["kt10003"] == 2


@pytest.mark.parametrize(
    ("qty", "words"),
    [("11", "EXCEEDS_CANCELLABLE"), ("-1", "INVALID_QUANTITY"), ("2.5", "INVALID_QUANTITY")],
)
def test_a_refused_cancel_sends_nothing(
    server: SimServer, capsys: pytest.CaptureFixture[str], qty: str, words: str
) -> None:
    no = place(server, 10)
    assert cancel(server, no, "--qty", qty) == EXIT["refused"] == 3
    out = capsys.readouterr().out
    assert words in out and "nothing was sent" in out
    assert server.calls["kt10003"] == 0 and server.truth(no).leaves == 10


def test_a_cancel_of_an_order_the_account_does_not_have_is_refused(
    server: SimServer, capsys: pytest.CaptureFixture[str]
) -> None:
    place(server, 10)
    assert cancel(server, "0000140") == EXIT["refused"]
    assert "UNKNOWN_ORDER" in capsys.readouterr().out
    assert server.calls["kt10003"] == 0


def test_a_filled_order_is_refused_not_sent(
    server: SimServer, capsys: pytest.CaptureFixture[str]
) -> None:
    no = place(server, 5)
    server.trade("005930", FAR_BELOW, 5)
    assert cancel(server, no) == EXIT["refused"]
    assert "FULLY_FILLED" in capsys.readouterr().out
    assert server.calls["kt10003"] == 0


def test_a_wrong_stock_code_or_venue_is_a_usage_error(
    server: SimServer, capsys: pytest.CaptureFixture[str]
) -> None:
    no = place(server, 10)
    argv = ["cancel", "--ord-no", no, "--stk-cd", "000660", "--base-url", server.base_url]
    assert main(argv) == EXIT["usage"]
    assert "is for 005930, not 000660" in capsys.readouterr().err
    assert cancel(server, no, "--exchange", "NXT") == EXIT["usage"]
    assert "placed on KRX, not NXT" in capsys.readouterr().err
    assert server.calls["kt10003"] == 0


def test_a_rejection_by_kiwoom_has_its_own_exit_status(
    server: SimServer, switch: Switch, capsys: pytest.CaptureFixture[str]
) -> None:
    no = place(server, 10)
    switch.open = False  # the market closed after the order was placed
    assert cancel(server, no) == EXIT["rejected"] == 4
    out = capsys.readouterr().out
    assert "rejected by Kiwoom: RC405" in out  # RC4057 or RC4058, by the hour
    assert server.calls["kt10003"] == 1 and server.truth(no).leaves == 10


def test_an_unknown_outcome_is_reported_and_not_sent_again(
    server: SimServer, capsys: pytest.CaptureFixture[str]
) -> None:
    no = place(server, 10)
    server.inject(Fault(FaultKind.CLOSE_BEFORE, api_id="kt10003"))
    assert cancel(server, no) == EXIT["unknown"] == 5
    out = capsys.readouterr().out
    assert "outcome:  UNKNOWN" in out and "do NOT send it again" in out
    assert server.calls["kt10003"] == 1 and server.truth(no).leaves == 10


def test_an_unknown_outcome_that_reconciliation_finds_on_the_server_is_accepted(
    server: SimServer, capsys: pytest.CaptureFixture[str]
) -> None:
    no = place(server, 10)
    server.inject(Fault(FaultKind.CLOSE_AFTER, api_id="kt10003"))
    assert cancel(server, no, "--qty", "3") == EXIT["accepted"]
    out = capsys.readouterr().out
    assert "outcome:  UNKNOWN" in out and "the server did take it: cancel number" in out
    assert server.calls["kt10003"] == 1 and server.truth(no).cancelled == 3


def test_an_unreadable_account_sends_nothing(
    server: SimServer, capsys: pytest.CaptureFixture[str]
) -> None:
    no = place(server, 10)
    server.inject(Fault(FaultKind.HTTP_500, api_id="ka10075"))
    assert cancel(server, no) == EXIT["failed"] == 1
    assert "cannot read the account, nothing was sent" in capsys.readouterr().err
    assert server.calls["kt10003"] == 0


def test_missing_credentials_or_a_foreign_host_are_usage_errors(
    server: SimServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KIWOOM_SECRETKEY")
    assert cancel(server, "0000001") == EXIT["usage"]
    assert "KIWOOM_SECRETKEY" in capsys.readouterr().err
    monkeypatch.setenv("KIWOOM_SECRETKEY", SECRET)
    argv = ["open-orders", "--base-url", "https://example.com"]
    assert main(argv) == EXIT["usage"]
    assert "refusing host 'example.com'" in capsys.readouterr().err
    assert sum(server.calls.values()) == 0


def test_open_orders_lists_every_page(
    server: SimServer, capsys: pytest.CaptureFixture[str]
) -> None:
    numbers = [place(server, qty) for qty in (1, 2, 3, 4, 5)]
    assert main(["open-orders", "--base-url", server.base_url]) == 0
    out = capsys.readouterr().out
    rows = [line.split()[0] for line in out.splitlines()[1:-1]]
    assert rows == numbers and out.splitlines()[-1] == "5 open order(s)"
    assert server.calls["ka10075"] == 3  # 5 rows, 2 a page


def test_the_installed_commands_work_end_to_end() -> None:
    exe = shutil.which("order-engine")
    assert exe is not None, "pip install -e . installs the order-engine command"
    env = {**os.environ, "KIWOOM_APPKEY": APPKEY, "KIWOOM_SECRETKEY": SECRET}
    proc = subprocess.Popen(
        [exe, "sim-server", "--rate", "none", "--no-market"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        with KiwoomClient(url, allow_loopback=True, appkey=APPKEY, secretkey=SECRET) as client:
            no = client.place(stk_cd="005930", side=Side.SELL, qty=7, price=99_000).ord_no

        def run(*argv: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [exe, *argv, "--base-url", url],
                capture_output=True,
                text=True,
                env=env,
                timeout=60,
                check=False,
            )

        listed = run("open-orders")
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.splitlines()[1].split()[:4] == [no, "005930", "SELL", "7"]
        done = run("cancel", "--ord-no", no, "--stk-cd", "005930", "--qty", "0")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "accepted" in done.stdout
        again = run("cancel", "--ord-no", no, "--stk-cd", "005930")
        assert again.returncode == 3 and "ALREADY_CANCELLED" in again.stdout
        for text in (listed.stdout, listed.stderr, done.stdout, done.stderr):
            assert APPKEY not in text and SECRET not in text
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def processed_cancels(server: SimServer) -> int:
    return sum(1 for call in server.log if call.api_id == "kt10003" and call.processed)


def test_a_rerun_after_an_unknown_outcome_cannot_send_the_same_shares_again(
    server: SimServer, capsys: pytest.CaptureFixture[str]
) -> None:
    no = place(server, 10)
    server.inject(Fault(FaultKind.CLOSE_BEFORE, api_id="kt10003"))  # no answer: unknown
    assert cancel(server, no, "--qty", "4") == EXIT["unknown"] == 5
    first = capsys.readouterr()
    assert "UNKNOWN" in first.out and "journal:" in first.err
    # The user asks again (a new process): the journal still holds the reservation, marked
    # unknown, and no trace is on the server yet: the engine refuses to send.
    for qty in ("4", "0", "1"):
        assert cancel(server, no, "--qty", qty) == EXIT["refused"] == 3
        again = capsys.readouterr()
        assert "OUTCOME_UNKNOWN" in again.out and "nothing was sent" in again.out
        assert "unknown outcome" in again.err
    assert processed_cancels(server) == 0 and server.truth(no).cancelled == 0
    # open-orders reconciles the same journal and says what is still unknown
    assert main(["open-orders", "--base-url", server.base_url]) == 0
    assert "not settled yet" in capsys.readouterr().err
    # Without the journal a re-run knows nothing of the first attempt and sends.
    assert cancel(server, no, "--qty", "4", "--no-journal") == EXIT["accepted"]
    assert processed_cancels(server) == 1


def test_a_cancel_the_server_took_without_answering_is_found_by_the_rerun(
    server: SimServer, capsys: pytest.CaptureFixture[str]
) -> None:
    no = place(server, 10)
    server.inject(Fault(FaultKind.CLOSE_AFTER, api_id="kt10003"))  # carried out, not answered
    journal = str(server.port) + ".sqlite3"
    path = os.path.join(os.environ["XDG_STATE_HOME"], journal)
    assert cancel(server, no, "--qty", "4", "--journal", path) == EXIT["accepted"]
    assert "the server did take it" in capsys.readouterr().out
    # asked again: the first cancel is in the book (numbered), so 4 more are 4 other shares
    assert cancel(server, no, "--qty", "6", "--journal", path) == EXIT["accepted"]
    assert cancel(server, no, "--qty", "1", "--journal", path) == EXIT["refused"]
    assert "ALREADY_CANCELLED" in capsys.readouterr().out
    assert processed_cancels(server) == 2 and server.truth(no).cancelled == 10


def test_a_journal_held_by_another_process_is_refused_and_nothing_is_sent(
    server: SimServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from adapters.journal import Journal

    no = place(server, 10)
    path = os.path.join(os.environ["XDG_STATE_HOME"], "held.sqlite3")
    with Journal(path, account="someone"):
        assert cancel(server, no, "--journal", path) == EXIT["failed"]
        assert "one writer" in capsys.readouterr().err
    assert server.calls["kt10003"] == 0
