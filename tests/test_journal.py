"""The durable event journal (adapters.journal) on real SQLite files, and a journalled broker's
restart against the Kiwoom-compatible simulator over loopback HTTP."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
import zlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from test_kiwoom_adapter import FAR_BELOW, assert_book_matches_truth, kt10003_bodies, make_client

from adapters.broker import CancelStatus, TicketStatus
from adapters.journal import (
    APPLICATION_ID,
    ForeignJournal,
    Journal,
    JournalCorrupt,
    JournalError,
    JournalLocked,
    account_key,
)
from adapters.kiwoom.broker import NOT_RECEIVED, KiwoomBroker
from adapters.kiwoom.simserver import Fault, FaultKind, SimServer
from engine import OrderBook, Refusal, Side
from engine import events as ev
from engine.sessions import KST

ACCOUNT = "acct-test"
DAY = date(2026, 3, 9)
NEXT_DAY = date(2026, 3, 10)
TS = datetime(2026, 3, 9, 1, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent


def fill_a_day(book: OrderBook) -> None:
    """Give ``book`` a day with every kind of record: fills, a done cancel, a done modify, and
    a pending cancel and a pending modify (reservations a restart must keep)."""
    book.apply(ev.OrderAccepted("0000001", "005930", Side.BUY, 10, 70_000, ts=TS))
    book.apply(ev.OrderConfirmed("0000001", ts=TS))
    book.apply(ev.OrderFilled("0000001", "E1", 3, 70_000, ts=TS))
    book.apply(ev.OrderAccepted("0000002", "000660", Side.SELL, 20, 180_000, ts=TS))
    done = book.request_cancel("0000002", 5, ts=TS)
    book.apply(ev.CancelAccepted("0000003", "0000002", 5, done.request_id, ts=TS))
    book.apply(ev.CancelConfirmed("0000003", "0000002", 5, done.request_id, ts=TS))
    book.request_cancel("0000001", 2, ts=TS)  # pending: no answer yet
    modify = book.request_modify("0000002", 4, 181_000, ts=TS)
    book.apply(ev.ModifyAccepted("0000004", "0000002", 4, modify.request_id, ts=TS))
    book.apply(ev.OrderAmended("0000004", "0000002", 4, 181_000, ts=TS))
    book.request_modify("0000002", 3, 182_000, ts=TS)  # pending modify
    # an event parked for an order the book does not know yet
    book.apply(ev.OrderConfirmed("0000009", ts=TS))


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "journal.sqlite3"


def written_day(path: Path) -> dict[str, object]:
    """Write :func:`fill_a_day` through a journal at ``path``; return the live book's snapshot."""
    with Journal(path, account=ACCOUNT) as journal:
        book = journal.open_day(DAY)
        fill_a_day(book)
        assert journal.pending > 0 and len(book.events) == 0  # the journal is the record
        journal.commit()
        assert journal.pending == 0
        return book.snapshot()


# -- round trips ---
def test_a_day_replays_into_an_identical_book_pending_reservations_included(path: Path) -> None:
    live = written_day(path)
    with Journal(path, account=ACCOUNT) as journal:
        replayed = journal.open_day(DAY)
        assert replayed.snapshot() == live
        first = replayed.orders["0000001"]
        assert first.pending_cancel_qty == 2 and first.filled_qty == 3
        assert replayed.orders["0000002"].pending_modify_qty == 3
        assert len(replayed.parked) == 1
        # the same as replaying the events in memory
        assert OrderBook.replay(journal.events(DAY)).snapshot() == live
        # the next request continues the numbering: no request id is used twice
        again = replayed.request_cancel("0000001", 1, ts=TS)
        assert again.request_id not in {c.request_id for c in first.cancels[:-1]}
        journal.commit(durable=True)
    with Journal(path, account=ACCOUNT) as journal:
        assert journal.open_day(DAY).orders["0000001"].pending_cancel_qty == 3


def test_days_are_kept_apart(path: Path) -> None:
    with Journal(path, account=ACCOUNT) as journal:
        monday = journal.open_day(DAY)
        monday.apply(ev.OrderAccepted("0000001", "005930", Side.BUY, 10, 70_000, ts=TS))
        tuesday = journal.open_day(NEXT_DAY)  # commits Monday's buffered events first
        assert tuesday.orders == {}
        tuesday.apply(ev.OrderAccepted("0000001", "000660", Side.SELL, 7, 180_000, ts=TS))
        journal.commit()
        assert journal.days() == [DAY, NEXT_DAY]
    with Journal(path, account=ACCOUNT) as journal:
        assert journal.open_day(DAY).orders["0000001"].stk_cd == "005930"
        assert journal.open_day(NEXT_DAY).orders["0000001"].qty == 7
        assert journal.open_day(date(2026, 3, 11)).orders == {}


def test_an_empty_account_name_or_a_journal_option_is_refused(path: Path) -> None:
    with pytest.raises(ValueError, match="account"):
        Journal(path, account="")
    with Journal(path, account=ACCOUNT) as journal, pytest.raises(ValueError, match="journal"):
        journal.open_day(DAY, journal=True)


def test_account_keys_are_stable_and_hide_what_they_are_made_of() -> None:
    key = account_key("https://api.kiwoom.com", "my-secret-appkey")
    assert key == account_key("https://api.kiwoom.com", "my-secret-appkey")
    assert key != account_key("https://mockapi.kiwoom.com", "my-secret-appkey")
    assert "secret" not in key and len(key) == 16


# -- durability ---
_CRASHER = textwrap.dedent(
    """
    import os, signal, sys
    from datetime import date
    from adapters.journal import Journal
    from engine import Side
    from engine import events as ev

    journal = Journal(sys.argv[1], account=sys.argv[2])
    book = journal.open_day(date.fromisoformat(sys.argv[3]))
    book.apply(ev.OrderAccepted("0000001", "005930", Side.BUY, 10, 70_000))
    journal.commit()
    book.request_cancel("0000001", 4)
    journal.commit(durable=True)  # the intent: on disk before a request would leave
    book.apply(ev.OrderFilled("0000001", "E1", 1, 70_000))  # buffered, never committed
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_a_durable_intent_survives_a_kill_and_an_uncommitted_fact_does_not(path: Path) -> None:
    child = subprocess.run(
        [sys.executable, "-c", _CRASHER, str(path), ACCOUNT, DAY.isoformat()],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    with Journal(path, account=ACCOUNT) as journal:  # the killed writer's lock is gone
        order = journal.open_day(DAY).orders["0000001"]
        assert order.pending_cancel_qty == 4
        assert order.filled_qty == 0  # the buffered fact died with the process


def test_a_durable_commit_leaves_the_connection_in_normal_mode(path: Path) -> None:
    with Journal(path, account=ACCOUNT) as journal:
        book = journal.open_day(DAY)
        book.apply(ev.OrderAccepted("0000001", "005930", Side.BUY, 10, 70_000, ts=TS))
        assert journal.commit(durable=True) == 1
        assert journal.commit(durable=True) == 0  # nothing buffered: nothing written
        assert journal._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert journal._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# -- damaged and foreign files: a clear error, never a shorter book ---
def _rows(path: Path) -> list[tuple[str, int, str, str, int]]:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT day, n, kind, body, crc FROM events ORDER BY day, n").fetchall()
    finally:
        db.close()


def _edit(path: Path, sql: str, *args: object) -> None:
    db = sqlite3.connect(path)
    try:
        db.execute(sql, args)
        db.commit()
    finally:
        db.close()


def _open_fails(path: Path, error: type[JournalError], match: str, *, same: bool = True) -> None:
    before = path.read_bytes()
    with pytest.raises(error, match=match), Journal(path, account=ACCOUNT) as journal:
        journal.open_day(DAY)
    if same:
        assert path.read_bytes() == before  # a refused file is left exactly as it was


def test_a_flipped_byte_in_a_row_is_a_checksum_mismatch(path: Path) -> None:
    written_day(path)
    _day, n, _kind, body, _crc = _rows(path)[3]
    flipped = body.replace('"qty":20', '"qty":21')  # still valid JSON, still a valid event
    assert flipped != body
    _edit(path, "UPDATE events SET body = ? WHERE n = ?", flipped, n)
    _open_fails(path, JournalCorrupt, f"row {n}: checksum mismatch")


def test_a_missing_row_is_a_gap(path: Path) -> None:
    written_day(path)
    _edit(path, "DELETE FROM events WHERE n = 2")
    _open_fails(path, JournalCorrupt, "gap: row 2 is missing")


def test_a_row_that_is_not_an_event_is_corrupt(path: Path) -> None:
    written_day(path)
    body = json.dumps({"type": "NoSuchEvent"})
    _edit(path, "UPDATE events SET body = ?, crc = ? WHERE n = 1", body, zlib.crc32(body.encode()))
    _open_fails(path, JournalCorrupt, "row 1")


def test_a_row_whose_kind_disagrees_with_its_body_is_corrupt(path: Path) -> None:
    written_day(path)
    _edit(path, "UPDATE events SET kind = 'OrderFilled' WHERE n = 1")
    _open_fails(path, JournalCorrupt, "kind 'OrderFilled' mismatch")


def test_an_event_the_book_refuses_on_replay_is_corrupt(path: Path) -> None:
    written_day(path)
    n = len(_rows(path)) + 1
    bad = ev.OrderFilled("0000001", "E9", 50, 70_000, ts=TS)  # more than the order's 10 shares
    body = json.dumps(bad.to_dict(), ensure_ascii=False, separators=(",", ":"))
    _edit(
        path,
        "INSERT INTO events (day, n, kind, body, crc) VALUES (?, ?, ?, ?, ?)",
        DAY.isoformat(),
        n,
        "OrderFilled",
        body,
        zlib.crc32(body.encode()),
    )
    _open_fails(path, JournalCorrupt, f"row {n}: the book refuses")


def test_a_file_that_is_not_a_database_is_corrupt(path: Path) -> None:
    path.write_bytes(b"order log, not SQLite\n" * 200)
    _open_fails(path, JournalCorrupt, "not a journal database|damaged|cannot open")


def test_a_database_with_a_damaged_header_is_corrupt(path: Path) -> None:
    written_day(path)
    data = bytearray(path.read_bytes())
    data[:16] = b"not SQLite 3\x00\x00\x00\x00"
    path.write_bytes(bytes(data))
    _open_fails(path, JournalCorrupt, "not a journal database|damaged")


def test_a_foreign_sqlite_file_is_refused(path: Path) -> None:
    _edit(path, "CREATE TABLE prices (stk_cd TEXT, price INTEGER)")
    _open_fails(path, ForeignJournal, "not an order-engine journal", same=False)
    db = sqlite3.connect(path)  # its data is still there
    assert db.execute("SELECT count(*) FROM prices").fetchone() == (0,)
    db.close()


def test_a_foreign_sqlite_file_is_left_exactly_as_it_was(path: Path) -> None:
    _edit(path, "CREATE TABLE prices (stk_cd TEXT, price INTEGER)")
    _open_fails(path, ForeignJournal, "not an order-engine journal")


def test_a_journal_of_a_newer_format_is_refused(path: Path) -> None:
    written_day(path)
    _edit(path, "PRAGMA user_version = 99")
    _open_fails(path, ForeignJournal, "format 99")


def test_another_accounts_journal_is_refused(path: Path) -> None:
    written_day(path)
    before = path.read_bytes()
    with pytest.raises(ForeignJournal, match="another account"):
        Journal(path, account="someone-else")
    assert path.read_bytes() == before
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    db.close()


# -- one writer ---
def test_a_second_writer_in_this_process_is_locked_out(path: Path) -> None:
    with Journal(path, account=ACCOUNT) as journal:
        journal.open_day(DAY).apply(ev.OrderAccepted("0000001", "005930", Side.BUY, 1, 1, ts=TS))
        with pytest.raises(JournalLocked, match="one writer"):
            Journal(path, account=ACCOUNT, timeout=0.05)
        journal.commit()
    with Journal(path, account=ACCOUNT) as again:  # closing released the lock
        assert "0000001" in again.open_day(DAY).orders


def test_a_second_writer_in_another_process_is_locked_out(path: Path) -> None:
    script = (
        "import sys\n"
        "from adapters.journal import Journal, JournalLocked\n"
        "try:\n"
        "    Journal(sys.argv[1], account=sys.argv[2], timeout=0.05)\n"
        "except JournalLocked as exc:\n"
        "    print('locked:', exc)\n"
        "    sys.exit(3)\n"
    )
    with Journal(path, account=ACCOUNT):
        other = subprocess.run(
            [sys.executable, "-c", script, str(path), ACCOUNT],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert other.returncode == 3, other.stderr
    assert "one writer" in other.stdout


# -- backups ---
def test_a_backup_opens_and_replays_into_an_equal_book(path: Path, tmp_path: Path) -> None:
    copy = tmp_path / "backup.sqlite3"
    with Journal(path, account=ACCOUNT) as journal:
        book = journal.open_day(DAY)
        fill_a_day(book)  # buffered: the backup commits them first
        assert journal.backup(copy) == copy
        with pytest.raises(ValueError, match="own journal"):
            journal.backup(path)
        live = book.snapshot()
    assert not Path(f"{copy}-wal").exists()  # a self-contained file
    with Journal(copy, account=ACCOUNT) as restored:
        assert restored.open_day(DAY).snapshot() == live
        assert restored.days() == [DAY]


# -- a journalled broker restarting against the simulator ---
@pytest.fixture
def server() -> Iterator[SimServer]:
    with SimServer(seed=5, rate=None, market=False) as srv:
        yield srv


def _today() -> date:
    return datetime.now(KST).date()


def _reserve_and_die(path: Path, server: SimServer, qty: int) -> tuple[str, str]:
    """Place an order, then leave a journal as a process killed between the durable commit of
    a cancel's reservation and its send would: return (ord_no, request_id)."""
    with make_client(server) as client:
        ord_no = client.place(stk_cd="005930", side=Side.BUY, qty=10, price=FAR_BELOW).ord_no
    with Journal(path, account=ACCOUNT) as journal:
        book = journal.open_day(_today())
        book.apply(ev.OrderAccepted(ord_no, "005930", Side.BUY, 10, FAR_BELOW, ts=TS))
        request = book.request_cancel(ord_no, qty, ts=TS)
        journal.commit(durable=True)
    return ord_no, request.request_id


def test_a_restart_keeps_an_unsent_reservation_unknown_then_releases_it(
    path: Path, server: SimServer
) -> None:
    ord_no, request_id = _reserve_and_die(path, server, 4)
    with make_client(server) as client:
        broker = KiwoomBroker(client, journal=path, account=ACCOUNT, unknown_grace=timedelta(0))
        try:
            order = broker.book.orders[ord_no]
            assert broker.unknown == (request_id,) and order.pending_cancel_qty == 4
            again = broker.cancel(None, ord_no, 4)
            assert again.status is CancelStatus.REFUSED
            assert again.decision.reason is Refusal.OUTCOME_UNKNOWN
            report = broker.reconcile()  # no trace on the server: released
            assert report.resolved == [request_id] and broker.unknown == ()
            [info] = order.cancels
            assert info.status == "rejected" and order.cancellable_qty == 10
            assert kt10003_bodies(server) == []
            assert broker.cancel(None, ord_no, 4).status is CancelStatus.ACCEPTED
            assert len(kt10003_bodies(server)) == 1
        finally:
            broker.close()
    with Journal(path, account=ACCOUNT) as journal:  # the release and the new cancel are kept
        events = list(journal.events(_today()))
        kinds = [type(e).__name__ for e in events]
        assert kinds.count("CancelRequested") == 2 and "CancelOutcomeUnknown" in kinds
        assert any(isinstance(e, ev.CancelRejected) and e.code == NOT_RECEIVED for e in events)


def test_a_restart_binds_a_reservation_the_server_did_take_and_sends_nothing_again(
    path: Path, server: SimServer
) -> None:
    ord_no, request_id = _reserve_and_die(path, server, 0)
    with make_client(server) as client:  # the dead process's kt10003 did reach the server
        client.cancel(orig_ord_no=ord_no, stk_cd="005930", qty="0")
        broker = KiwoomBroker(client, journal=path, account=ACCOUNT, unknown_grace=timedelta(0))
        try:
            assert broker.unknown == (request_id,)
            refused = broker.cancel(None, ord_no, "0")
            assert refused.status is CancelStatus.REFUSED
            report = broker.reconcile()
            assert report.clean, report
            assert report.resolved == [request_id] and broker.unknown == ()
            [info] = broker.book.orders[ord_no].cancels
            assert info.request_id == request_id and info.cancel_no and info.status == "confirmed"
            assert len(kt10003_bodies(server)) == 1
            assert_book_matches_truth(broker.book, server)
            live = broker.book.snapshot()
        finally:
            broker.close()
    with Journal(path, account=ACCOUNT) as journal:
        assert journal.open_day(_today()).snapshot() == live


def test_a_broker_journal_is_locked_against_a_second_broker(path: Path, server: SimServer) -> None:
    with make_client(server) as client:
        first = KiwoomBroker(client, journal=path, account=ACCOUNT)
        try:
            with pytest.raises(JournalLocked):
                KiwoomBroker(client, journal=path, account=ACCOUNT)
        finally:
            first.close()
        second = KiwoomBroker(client, journal=path, account=ACCOUNT)
        second.close()


def test_a_restart_releases_an_unsent_modify_of_an_order_modified_before(
    path: Path, server: SimServer
) -> None:
    with make_client(server) as client:
        broker = KiwoomBroker(client, journal=path, account=ACCOUNT, unknown_grace=timedelta(0))
        ord_no = broker.place(stk_cd="005930", side=Side.BUY, qty=10, price=FAR_BELOW).ord_no
        first = broker.modify(orig_ord_no=ord_no, stk_cd="005930", qty=2, price=FAR_BELOW + 100)
        assert first.ord_no
        assert broker.reconcile().clean  # the first modify is done: M = 2
        server.inject(Fault(FaultKind.CLOSE_BEFORE, api_id="kt10002"))  # never reaches it
        lost = broker.modify(orig_ord_no=ord_no, stk_cd="005930", qty=3, price=FAR_BELOW + 200)
        assert lost.status is TicketStatus.UNKNOWN
        broker.close()
        restarted = KiwoomBroker(client, journal=path, account=ACCOUNT, unknown_grace=timedelta(0))
        try:
            order = restarted.book.orders[ord_no]
            assert order.pending_modify_qty == 3
            for _ in range(3):
                report = restarted.reconcile()
            assert report.clean, report
            assert order.pending_modify_qty == 0 and order.cancellable_qty == 8
            assert server.calls["kt10002"] == 2
            assert_book_matches_truth(restarted.book, server)
        finally:
            restarted.close()


def test_a_reservation_the_journal_cannot_take_is_released_and_nothing_is_sent(
    path: Path, server: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with make_client(server) as client:
        broker = KiwoomBroker(client, journal=path, account=ACCOUNT)
        no = broker.place(stk_cd="005930", side=Side.BUY, qty=10, price=FAR_BELOW).ord_no
        journal = broker.journal
        assert journal is not None
        commit = journal.commit

        def disk_full(*, durable: bool = False) -> int:
            if durable:
                raise JournalError("disk full (injected)")
            return commit(durable=durable)

        monkeypatch.setattr(journal, "commit", disk_full)
        with pytest.raises(JournalError):
            broker.cancel(None, no, 4)
        with pytest.raises(JournalError):
            broker.modify(orig_ord_no=no, stk_cd="005930", qty=3, price=FAR_BELOW - 100)
        order = broker.book.get(no)
        assert order.cancellable_qty == 10 and not order.outcome_unknown  # both released
        assert [c.status for c in (*order.cancels, *order.modifies)] == ["rejected", "rejected"]
        assert server.calls["kt10003"] == server.calls["kt10002"] == 0  # nothing left
        monkeypatch.setattr(journal, "commit", commit)
        assert broker.cancel(None, no, 4).status is CancelStatus.ACCEPTED
        broker.close()
    with Journal(path, account=ACCOUNT) as reopened:  # the releases were journalled too
        assert OrderBook.replay(reopened.events(_today())).get(no).snapshot() == order.snapshot()
