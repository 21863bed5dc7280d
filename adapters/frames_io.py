"""Write a pandas DataFrame to Parquet or CSV, chosen by the file's extension."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

__all__ = ["FRAME_SUFFIXES", "check_frame_path", "write_frame"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

#: The extensions :func:`write_frame` understands.
FRAME_SUFFIXES = (".parquet", ".csv")


def check_frame_path(path: str | Path) -> Path:
    """Return ``path`` as a Path; raise ValueError unless it ends in .parquet or .csv."""
    path = Path(path)
    if path.suffix.lower() not in FRAME_SUFFIXES:
        raise ValueError(f"{path}: the file name must end in .parquet or .csv")
    return path


def write_frame(frame: Any, path: str | Path, *, extra: str = "sweep") -> None:
    """Write ``frame`` to ``path``: Parquet (needs pyarrow) or CSV, by the extension.

    A missing pyarrow raises :class:`engine.frames.MissingExtra` naming ``extra``.
    """
    path = check_frame_path(path)
    if path.suffix.lower() == ".csv":
        frame.to_csv(path)
        return
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        from engine.frames import MissingExtra

        raise MissingExtra(
            f"Parquet files need pyarrow, in the [{extra}] extra: "
            f"pip install 'kiwoom-order-engine[{extra}]' (or write .csv)"
        ) from None
    frame.to_parquet(path)
