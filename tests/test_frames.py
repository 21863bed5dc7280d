"""DataFrames out: OrderBook/Report frames, their dtypes, and ``simulate --orders-out``."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

pd = pytest.importorskip("pandas", reason="the [report]/[sweep] extra is not installed")

from adapters.cli.main import main  # noqa: E402
from adapters.sim import Latency, run_session  # noqa: E402
from engine import OrderBook, OrderState, Side  # noqa: E402
from engine import events as ev  # noqa: E402
from engine.sessions import KST  # noqa: E402

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=KST)


def _book() -> OrderBook:
    book = OrderBook()
    book.apply(ev.OrderAccepted("0000001", "005930", Side.BUY, 10, 70_000, ts=T0))
    book.apply(ev.OrderConfirmed("0000001", ts=T0 + timedelta(milliseconds=40)))
    book.apply(ev.OrderFilled("0000001", "f1", 4, 70_000, ts=T0 + timedelta(seconds=1)))
    book.request_cancel("0000001", 0, ts=T0 + timedelta(seconds=2))
    book.apply(
        ev.CancelConfirmed("0000002", "0000001", 6, "R0000001", ts=T0 + timedelta(seconds=3))
    )
    book.apply(ev.OrderAccepted("0000003", "000660", Side.SELL, 5, 0, ts=T0))
    return book


def test_orders_frame_has_the_books_numbers_and_proper_dtypes() -> None:
    frame = _book().to_frame()
    assert list(frame.index) == ["0000001", "0000003"] and frame.index.name == "ord_no"
    first = frame.loc["0000001"]
    assert (first["filled_qty"], first["cancelled_qty"], first["leaves_qty"]) == (4, 6, 0)
    assert first["state"] == "CANCELLED" and first["state_label"] == "취소"
    assert first["avg_fill_price"] == 70_000.0 and first["fill_notional"] == 280_000
    assert list(frame["state"].cat.categories) == [s.name for s in OrderState]
    assert frame["state"].cat.ordered
    assert str(frame["side"].dtype) == "category" and frame.loc["0000003", "side"] == "SELL"
    assert str(frame["accepted_at"].dt.tz) == "Asia/Seoul"
    assert first["accepted_at"] == pd.Timestamp(T0)
    assert first["updated_at"] == pd.Timestamp(T0 + timedelta(seconds=3))
    assert pd.isna(frame.loc["0000003", "avg_fill_price"])
    assert frame["qty"].dtype == "int64"


def test_events_frame_keeps_the_order_and_types_of_the_events() -> None:
    book = _book()
    frame = book.events_frame()
    assert list(frame["type"]) == [type(e).__name__ for e in book.events]
    assert str(frame["type"].dtype) == "category"
    assert str(frame["ts"].dt.tz) == "Asia/Seoul"
    fill = frame[frame["type"] == "OrderFilled"].iloc[0]
    assert (fill["qty"], fill["price"], fill["fill_id"]) == (4, 70_000, "f1")
    assert pd.isna(frame.iloc[0]["fill_id"]) and frame["qty"].dtype == "Int64"


def test_a_book_without_a_journal_still_frames_its_orders() -> None:
    book = OrderBook(journal=False)
    book.apply(ev.OrderAccepted("0000001", "005930", Side.BUY, 10, 70_000, ts=T0))
    frame = book.to_frame()
    assert len(frame) == 1 and pd.isna(frame.iloc[0]["accepted_at"])
    assert book.events_frame().empty
    assert OrderBook().to_frame().empty


def test_report_frames_the_sessions_orders() -> None:
    harness, report = run_session(seed=3, orders=40, step_ms=5000, latency=Latency.uniform("5-150"))
    frame = report.to_frame()
    assert len(frame) == report.orders
    assert frame["state"].value_counts().to_dict() == {
        s: report.states.get(s, 0) for s in frame["state"].cat.categories
    }
    assert int(frame["filled_qty"].sum()) == report.shares["filled"]
    assert len(report.events_frame()) == len(harness.book.events)


def test_simulate_orders_out_writes_parquet_and_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("pyarrow", reason="Parquet needs the [sweep] extra")
    parquet = tmp_path / "orders.parquet"
    small = ["--orders", "30", "--step-ms", "5000", "--json"]
    assert main(["simulate", *small, "--orders-out", str(parquet)]) == 0
    capsys.readouterr()
    frame = pd.read_parquet(parquet)
    assert str(frame["state"].dtype) == "category" and str(frame["accepted_at"].dt.tz) == (
        "Asia/Seoul"
    )
    csv = tmp_path / "orders.csv"
    assert main(["simulate", *small, "--orders-out", str(csv)]) == 0
    back = pd.read_csv(csv, dtype={"ord_no": str})
    assert list(back["ord_no"]) == list(frame.index)
    assert main(["simulate", *small, "--orders-out", str(tmp_path / "orders.xlsx")]) == 2
    assert ".parquet or .csv" in capsys.readouterr().err


def test_without_pandas_the_message_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['pandas'] = None\n"
        "from engine import OrderBook\n"
        "try:\n"
        "    OrderBook().to_frame()\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == (
        "OrderBook.to_frame() needs pandas, in the [report] and [sweep] extras: "
        "pip install 'kiwoom-order-engine[report]'"
    )
