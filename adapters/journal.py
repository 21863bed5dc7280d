"""A durable event journal: every event a live book takes, in order, in one SQLite file.

One file holds one account's journal, its rows keyed by the Korea trading day (order numbers
restart every day). :meth:`Journal.open_day` replays the day's events into a new
:class:`engine.OrderBook` that writes every later event back through the journal, so that a
process killed at any instant restarts with an identical book, pending reservations included.

Durability, by kind of event:

- **Intents** (``CancelRequested``, ``ModifyRequested``, ``CancelOutcomeUnknown``) are committed
  with ``synchronous=FULL`` by :meth:`Journal.commit` with ``durable=True``, which a broker calls
  **before** the request leaves the process. A reservation on disk is never lost; a request
  that was sent always has its reservation on disk.
- **Facts** (fills, acceptances, confirmations, ...) are buffered and committed in batches
  (``synchronous=NORMAL`` in WAL mode: safe against a process crash; the operating system may
  lose the last batch on a power cut, which reconciliation then recovers from the broker).
  A broker commits them at the end of each operation, so a strategy never acts on a fact that
  is not in the file.

The file is SQLite in WAL mode with an exclusive lock held while it is open: a second process
(or a second :class:`Journal`) opening the same file gets :class:`JournalLocked`, so there is
one writer. Each row carries a CRC-32 of its body and a per-day sequence number; a file that is
not a journal, a journal of another account, a damaged row, a gap, or an event the book refuses
on replay raises a :class:`JournalError` naming the problem: never a silently shorter book.
Use :meth:`Journal.backup` (SQLite's online backup) for copies, never a file copy of a live
journal. Thread-safe: every method takes the journal's lock.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import zlib
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from engine import EngineError, OrderBook
from engine import events as ev

__all__ = [
    "APPLICATION_ID",
    "INTENTS",
    "ForeignJournal",
    "Journal",
    "JournalCorrupt",
    "JournalError",
    "JournalLocked",
    "account_key",
    "default_journal_path",
    "is_journal_file",
    "read_journal",
]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

#: ``PRAGMA application_id`` of a journal ("KOEJ"): anything else is not one of ours.
APPLICATION_ID: Final = 0x4B4F454A
#: ``PRAGMA user_version``: the row format. A newer one is refused, never guessed at.
FORMAT_VERSION: Final = 1
#: Events that record our own requests: committed durably before the request is sent.
INTENTS: Final = frozenset({ev.CancelRequested, ev.ModifyRequested, ev.CancelOutcomeUnknown})

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    day TEXT NOT NULL,
    n INTEGER NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    crc INTEGER NOT NULL,
    PRIMARY KEY (day, n)
) WITHOUT ROWID;
"""


class JournalError(Exception):
    """Base of the journal's errors. The journal (and any book made from it) is unchanged."""


class JournalCorrupt(JournalError):
    """The file is damaged: not a database, a bad row, a gap, or an event the book refuses.

    Nothing was replayed. Restore a backup (:meth:`Journal.backup` copies) or reconcile a new
    journal from the broker; never edit the file by hand.
    """


class ForeignJournal(JournalError):
    """The file is not a journal of this engine, or belongs to another account."""


class JournalLocked(JournalError):
    """Another process (or another open :class:`Journal`) is writing this journal: one writer."""


def account_key(*parts: str) -> str:
    """Return a short stable name for an account from identifying ``parts`` (hashed).

    Pass what identifies the account (the API host and the app key, say): only a SHA-256 digest
    of them is kept, so an app key never appears in a file name or a journal.
    """
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return digest[:16]


def default_journal_path(account: str) -> Path:
    """Return the per-account journal file in the user's state directory.

    ``$XDG_STATE_HOME/kiwoom-order-engine/`` (default ``~/.local/state/kiwoom-order-engine/``).
    """
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "kiwoom-order-engine" / f"journal-{account}.sqlite3"


#: One encoder for every row (compact, UTF-8 text as it is).
_ENCODE: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _crc(body: str) -> int:
    return zlib.crc32(body.encode("utf-8"))


def _failure(path: Path, exc: sqlite3.DatabaseError, locked: str) -> JournalError:
    """Return the journal error for SQLite's ``exc``: another writer holds the file
    (:class:`JournalLocked`, saying ``locked``), or the file is damaged or not a database."""
    if isinstance(exc, sqlite3.OperationalError):
        if "locked" in str(exc) or "busy" in str(exc):
            return JournalLocked(f"{path} {locked}")
        return JournalCorrupt(f"{path} is damaged: {exc}")
    return JournalCorrupt(f"{path} is not a journal database: {exc}")


def _day_rows(db: sqlite3.Connection, day: date) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT n, kind, body, crc FROM events WHERE day = ? ORDER BY n", (day.isoformat(),)
    ).fetchall()


def _decode(path: Path, day: date, rows: list[tuple[Any, ...]]) -> Iterator[ev.Event]:
    """Yield the events of ``day``'s rows, checking each (sequence, checksum, kind)."""
    key = day.isoformat()
    expected = 1
    for n, kind, body, crc in rows:
        if n != expected:
            raise JournalCorrupt(f"{path}: day {key} has a gap: row {expected} is missing")
        if not isinstance(body, str) or _crc(body) != crc:
            raise JournalCorrupt(f"{path}: day {key}, row {n}: checksum mismatch")
        try:
            event = ev.from_dict(json.loads(body))
        except (ValueError, EngineError) as exc:
            raise JournalCorrupt(f"{path}: day {key}, row {n}: {exc}") from None
        if type(event).__name__ != kind:
            raise JournalCorrupt(f"{path}: day {key}, row {n}: kind {kind!r} mismatch")
        expected += 1
        yield event


def is_journal_file(path: str | os.PathLike[str]) -> bool:
    """Return True when ``path`` is a SQLite file (a journal, or something to refuse as one)."""
    try:
        with open(path, "rb") as f:
            return f.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def read_journal(
    path: str | os.PathLike[str], day: date | None = None
) -> tuple[date, list[ev.Event]]:
    """Read one day of a journal without writing to it (default: its latest day).

    For looking at a recorded day after the fact (``order-engine report``): the file is opened
    read-only and no account is checked. A journal a live broker holds open cannot be read
    (:class:`JournalLocked`): use a :meth:`Journal.backup`. Raise :class:`JournalError` as
    :meth:`Journal.open_day` does for a damaged or foreign file, and when the day is not there.
    """
    where = Path(path)
    if not where.is_file():
        raise JournalError(f"{where}: no such file")
    try:
        db = sqlite3.connect(f"{where.resolve().as_uri()}?mode=ro", uri=True, timeout=0.5)
    except sqlite3.Error as exc:
        raise JournalCorrupt(f"{where}: cannot open: {exc}") from None
    try:
        if db.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
            raise ForeignJournal(f"{where} is not an order-engine journal")
        if day is None:
            latest = db.execute("SELECT MAX(day) FROM events").fetchone()[0]
            if latest is None:
                raise JournalError(f"{where}: the journal holds no day")
            day = date.fromisoformat(latest)
        events = list(_decode(where, day, _day_rows(db, day)))
    except sqlite3.DatabaseError as exc:
        raise _failure(
            where, exc, "is held by a live broker: read a backup of it instead"
        ) from None
    finally:
        db.close()
    if not events:
        raise JournalError(f"{where}: no events on {day}")
    return day, events


class Journal:
    """The event journal of one account in the SQLite file ``path`` (created when missing).

    ``account`` names the account (see :func:`account_key`); opening a file of another account
    raises :class:`ForeignJournal`. Use :meth:`open_day` to get the day's book, then
    :meth:`commit` after each operation (``durable=True`` before sending a request).
    """

    def __init__(self, path: str | os.PathLike[str], *, account: str, timeout: float = 0.5) -> None:
        if not isinstance(account, str) or not account:
            raise ValueError("a journal needs a non-empty account name")
        self.path = Path(path)
        self.account = account
        self._lock = threading.RLock()
        self._pending: list[tuple[str, str, str, int]] = []  # (day, kind, body, crc) to write
        self._day: str | None = None
        self._next_n = 1
        self._recording = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise JournalCorrupt(f"{self.path}: cannot open: {exc}") from None
        try:
            self._setup()
        except BaseException:
            self._db.close()
            raise

    def _setup(self) -> None:
        db = self._db
        try:
            db.execute("PRAGMA locking_mode=EXCLUSIVE")
            # Look before changing anything: a file that is not ours is left exactly as it was.
            app = db.execute("PRAGMA application_id").fetchone()[0]
            if app != APPLICATION_ID and db.execute("SELECT 1 FROM sqlite_master").fetchone():
                raise ForeignJournal(f"{self.path} is not an order-engine journal")
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise JournalLocked(f"{self.path}: could not switch to WAL mode (got {mode!r})")
            db.execute("PRAGMA synchronous=NORMAL")
            # Take the exclusive lock now (a write transaction): one writer at a time.
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            raise _failure(
                self.path, exc, "is open in another process (or object): one writer only"
            ) from None
        try:
            app = db.execute("PRAGMA application_id").fetchone()[0]
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
            if app == 0 and not tables:  # a new file
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA application_id={APPLICATION_ID}")
                db.execute(f"PRAGMA user_version={FORMAT_VERSION}")
                db.execute(
                    "INSERT INTO meta (key, value) VALUES ('account', ?), ('format', ?)",
                    (self.account, str(FORMAT_VERSION)),
                )
                db.execute("COMMIT")
                return
            if app != APPLICATION_ID:
                raise ForeignJournal(f"{self.path} is not an order-engine journal")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version != FORMAT_VERSION:
                raise ForeignJournal(
                    f"{self.path} has journal format {version}; this version reads {FORMAT_VERSION}"
                )
            check = db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise JournalCorrupt(f"{self.path} is damaged: {check}")
            row = db.execute("SELECT value FROM meta WHERE key = 'account'").fetchone()
            if row is None:
                raise JournalCorrupt(f"{self.path} has no account record")
            if row[0] != self.account:
                raise ForeignJournal(f"{self.path} is the journal of another account")
            db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise JournalCorrupt(f"{self.path} is damaged: {exc}") from None
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    # -- reading ----------------------------------------------------------------------------------
    def days(self) -> list[date]:
        """Return the trading days the journal holds, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT day FROM events ORDER BY day").fetchall()
        return [date.fromisoformat(r[0]) for r in rows]

    def events(self, day: date) -> Iterator[ev.Event]:
        """Yield the events of ``day`` in the order the book took them; check every row.

        Raise :class:`JournalCorrupt` at the first damaged row, gap or undecodable event.
        """
        with self._lock:
            rows = _day_rows(self._db, day)
        return _decode(self.path, day, rows)

    def open_day(self, day: date, **book_options: Any) -> OrderBook:
        """Return ``day``'s book: its events replayed, and every later event recorded here.

        ``book_options`` go to :class:`engine.OrderBook` (``calendar``, ``max_parked``). The
        book's own ``events`` list stays empty: this journal is its record. Raise
        :class:`JournalCorrupt` when a row is damaged or the book refuses a recorded event.
        """
        if "journal" in book_options:
            raise ValueError("the journal is the book's record: do not pass journal=")
        with self._lock:
            self.commit()  # what the previous day still had buffered
            self._recording = False
            book = OrderBook(journal=self._record, **book_options)
            count = 0
            try:
                for count, event in enumerate(self.events(day), start=1):  # noqa: B007
                    book.apply(event)
            except EngineError as exc:
                raise JournalCorrupt(
                    f"{self.path}: day {day}, row {count}: the book refuses the recorded "
                    f"{type(exc).__name__}: {exc}"
                ) from None
            self._day = day.isoformat()
            self._next_n = count + 1
            self._recording = True
            log.debug("journal %s: replayed %d events of %s", self.path.name, count, day)
            return book

    # -- writing ----------------------------------------------------------------------------------
    def _record(self, event: ev.Event) -> None:
        """The book's sink: buffer ``event`` for the next commit (never raises)."""
        if not self._recording:
            return  # replaying: the event is already in the file
        body = _ENCODE(event.to_dict())
        with self._lock:
            assert self._day is not None
            self._pending.append((self._day, type(event).__name__, body, _crc(body)))

    @property
    def pending(self) -> int:
        """Return how many events are buffered, not yet committed."""
        return len(self._pending)

    def commit(self, *, durable: bool = False) -> int:
        """Write the buffered events in one transaction; return how many were written.

        ``durable`` commits with ``synchronous=FULL`` (the WAL is synced to disk before this
        returns): use it for intents, before the request they record is sent. Raise
        :class:`JournalError` when the write fails; the events stay buffered then.
        """
        with self._lock:
            rows = self._pending
            if not rows and not durable:
                return 0
            db = self._db
            try:
                if durable:
                    db.execute("PRAGMA synchronous=FULL")
                db.execute("BEGIN IMMEDIATE")
                first = self._next_n
                db.executemany(
                    "INSERT INTO events (day, n, kind, body, crc) VALUES (?, ?, ?, ?, ?)",
                    [
                        (day, first + i, kind, body, crc)
                        for i, (day, kind, body, crc) in enumerate(rows)
                    ],
                )
                n = first + len(rows)
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise JournalError(f"{self.path}: could not write the journal: {exc}") from None
            finally:
                if durable:
                    db.execute("PRAGMA synchronous=NORMAL")
            self._next_n = n
            self._pending = []
            return len(rows)

    def backup(self, destination: str | os.PathLike[str]) -> Path:
        """Copy the journal (committed events) to ``destination`` with SQLite's backup API.

        Safe while the journal is in use; never copy the file itself (its WAL holds recent
        commits). Return the destination path.
        """
        target = Path(destination)
        if target.resolve() == self.path.resolve():
            raise ValueError("a backup cannot overwrite its own journal")
        with self._lock:
            self.commit()
            copy = sqlite3.connect(target)
            try:
                self._db.backup(copy)
                copy.execute("PRAGMA journal_mode=DELETE")
            finally:
                copy.close()
        return target

    def close(self) -> None:
        """Commit what is buffered and close the file (releasing the writer's lock)."""
        with self._lock:
            try:
                self.commit()
            finally:
                self._recording = False
                self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r}, day={self._day}, buffered={len(self._pending)})"
