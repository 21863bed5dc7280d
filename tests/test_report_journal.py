"""``order-engine report`` draws a live session's day from its SQLite journal."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from adapters.cli.main import main
from adapters.journal import Journal, JournalLocked, read_journal
from adapters.kiwoom import KiwoomBroker, KiwoomClient
from adapters.kiwoom.simserver import SimServer
from engine import Side

pytest.importorskip("plotly", reason="the report needs the [report] extra (plotly)")


def _live_day(path: Path) -> tuple[list[str], date]:
    with (
        SimServer(rate=None, market=False) as server,
        KiwoomClient(server.base_url, allow_loopback=True, appkey="k", secretkey="s") as client,
    ):
        broker = KiwoomBroker(client, journal=path, account="acct")
        numbers = [
            broker.place(stk_cd="005930", side=Side.BUY, qty=10, price=50_000 + i).ord_no
            for i in range(3)
        ]
        broker.cancel(None, numbers[0], "0")
        broker.cancel(None, numbers[1], 4)
        broker.reconcile()
        day = broker.trading_day
        broker.close()
    return numbers, day


def test_a_live_sessions_journal_is_drawn_after_the_fact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "journal.sqlite3"
    numbers, day = _live_day(journal)
    read_day, events = read_journal(journal)
    assert read_day == day and {type(e).__name__ for e in events} >= {
        "OrderAccepted",
        "CancelRequested",
        "CancelAccepted",
        "CancelConfirmed",
    }
    page = tmp_path / "day.html"
    assert main(["report", str(journal), "-o", str(page), "--day", day.isoformat()]) == 0
    assert f"{len(events):,} events" in capsys.readouterr().out
    html = page.read_text(encoding="utf-8")
    assert all(no in html for no in numbers)
    # a day the journal does not hold writes nothing
    other = tmp_path / "other.html"
    assert main(["report", str(journal), "-o", str(other), "--day", "2001-01-02"]) == 2
    assert "no events on 2001-01-02" in capsys.readouterr().err and not other.exists()


def test_a_journal_held_by_a_live_broker_is_not_read(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite3"
    _live_day(journal)
    with Journal(journal, account="acct"), pytest.raises(JournalLocked, match="backup"):
        read_journal(journal)
    assert read_journal(journal)[1]  # closed again: readable
