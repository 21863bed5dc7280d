"""Sweeps: many simulated days over a grid of seeds and parameter sets, on Dask distributed.

Each day is a pure function of its seed and :class:`Params` (:func:`run_day`): it runs the day
of ``order-engine simulate`` in the worker and returns one small flat dict (a *row*: counts, no
book). :func:`run_sweep` submits every day to a Dask cluster (an embedded ``LocalCluster`` or an
existing scheduler), collects the rows, and :func:`aggregate` sums them per parameter set. The
aggregates depend only on the rows, sorted by parameter set and seed, never on which worker ran
what or when: the same grid gives the same aggregates on 1 worker, 2 workers or a cluster.

Dask, pandas and pyarrow come with the ``[sweep]`` extra; only :func:`run_sweep` and
:func:`rows_frame` need them.
"""

from __future__ import annotations

import itertools
import logging
import shlex
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

import attrs

from adapters.cli.simulate import MAX_LATENCY_MS
from adapters.sim.harness import Harness, Race
from adapters.sim.latency import Delay, Latency
from adapters.sim.session import DEFAULT_SYMBOLS, run_session
from engine import Refusal
from engine.frames import MissingExtra
from engine.sessions import KoreaSessions

__all__ = [
    "RACE_KINDS",
    "DayTimeout",
    "Params",
    "SweepResult",
    "aggregate",
    "parse_seeds",
    "require_dask",
    "rows_frame",
    "run_day",
    "run_serial",
    "run_sweep",
]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

#: Every race kind the harness counts, in a fixed order (each row has a column for each).
RACE_KINDS: Final = tuple(
    v for k, v in vars(Race).items() if not k.startswith("_") and isinstance(v, str)
)
_REFUSALS: Final = tuple(r.name for r in Refusal)

#: The most seeds one ``--seeds`` range may give (a typo such as 1-10000000 is refused).
MAX_SEEDS: Final = 1_000_000

INSTALL_HINT: Final = (
    "order-engine sweep needs the [sweep] extra: pip install 'kiwoom-order-engine[sweep]'"
)


def require_dask() -> Any:
    """Import and return ``distributed``, or raise :class:`MissingExtra` naming ``[sweep]``."""
    try:
        import distributed
    except ImportError:
        raise MissingExtra(INSTALL_HINT) from None
    return distributed


def parse_seeds(text: str) -> tuple[int, ...]:
    """Read ``"1-1000"``, ``"1,5,9"`` or a mix (``"1-3,10"``); raise ValueError if malformed.

    Seeds keep the order given; a seed given twice is refused (it would count a day twice).
    """
    seeds: list[int] = []
    for raw in text.split(","):
        part = raw.strip()
        low, sep, high = part.partition("-")
        try:
            if sep:
                a, b = int(low), int(high)
                if b < a:
                    raise ValueError(f"a seed range must not be reversed: {part!r}")
                if b - a + 1 > MAX_SEEDS:
                    raise ValueError(f"at most {MAX_SEEDS:,} seeds in a range: {part!r}")
                seeds.extend(range(a, b + 1))
            else:
                seeds.append(int(part))
        except ValueError as exc:
            if "seed" in str(exc):
                raise
            raise ValueError(
                f"seeds are N, LOW-HIGH or a comma-separated list of them, not {text!r}"
            ) from None
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"a seed is given twice: {text!r}")
    return tuple(seeds)


def _delay(value: str | Delay) -> Delay:
    return value if isinstance(value, Delay) else Delay.parse(str(value))


@attrs.frozen
class Params:
    """One parameter set of a sweep: the options of ``simulate`` other than the seed."""

    orders: int = 500
    latency: Delay = attrs.field(default=Delay(5, 150), converter=_delay)
    reorder: bool = False
    symbols: tuple[str, ...] = attrs.field(default=DEFAULT_SYMBOLS, converter=tuple)
    step_ms: int = 200
    sessions: bool = False

    def __attrs_post_init__(self) -> None:
        for name in ("orders", "step_ms"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"{name} must be a positive int, not {value!r}")
        for name in ("reorder", "sessions"):
            if type(getattr(self, name)) is not bool:
                raise ValueError(f"{name} must be true or false, not {getattr(self, name)!r}")
        if self.latency.high > MAX_LATENCY_MS:
            raise ValueError(f"at most {MAX_LATENCY_MS:,} ms a channel, not {self.latency}")
        if not self.symbols or any(
            len(c) != 6 or not (c.isascii() and c.isdigit()) for c in self.symbols
        ):
            raise ValueError(f"symbols are 6-digit codes such as 005930, not {self.symbols!r}")

    @property
    def latency_text(self) -> str:
        """Return the latency as ``simulate --latency-ms`` reads it (``25`` or ``5-150``)."""
        d = self.latency
        return str(d.low) if d.low == d.high else f"{d.low}-{d.high}"

    def label(self) -> str:
        """Return a short human description (``orders 50, latency 5-150 ms, reorder, ...``)."""
        return (
            f"orders {self.orders}, latency {self.latency_text} ms"
            f"{', reorder' if self.reorder else ''}, symbols {','.join(self.symbols)}, "
            f"step {self.step_ms} ms{', KRX sessions' if self.sessions else ''}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the parameters as JSON-ready data (the keys of a grid file)."""
        return {
            "orders": self.orders,
            "latency": self.latency_text,
            "reorder": self.reorder,
            "symbols": ",".join(self.symbols),
            "step_ms": self.step_ms,
            "sessions": self.sessions,
        }

    def command(self, seed: int) -> str:
        """Return the ``order-engine simulate`` command that runs this day alone."""
        words = [
            "order-engine",
            "simulate",
            "--seed",
            str(seed),
            "--orders",
            str(self.orders),
            "--latency-ms",
            self.latency_text,
            *(["--reorder"] if self.reorder else []),
            "--symbols",
            ",".join(self.symbols),
            "--step-ms",
            str(self.step_ms),
            *(["--sessions"] if self.sessions else []),
        ]
        return shlex.join(words)


class DayTimeout(Exception):
    """A day ran longer than the sweep's per-day limit."""


def _deadline(seconds: float) -> Callable[[Harness], None]:
    limit = time.perf_counter() + seconds

    def check(_harness: Harness) -> None:
        if time.perf_counter() > limit:
            raise DayTimeout(f"the day ran longer than {seconds:g} s")

    return check


def run_day(seed: int, params: Params, timeout: float | None = None) -> dict[str, Any]:
    """Run one simulated day and return its row (a flat dict of counts; never the book).

    ``status`` is ``ok``, ``mismatch`` (the engine disagreed with the exchange), ``error`` or
    ``timeout``; a failed day still returns a row. ``seconds`` is the only timing in a row and
    takes no part in the aggregates.
    """
    started = time.perf_counter()
    row: dict[str, Any] = {"seed": seed, **params.to_dict()}
    try:
        latency = Latency(params.latency, params.latency, params.latency, params.reorder)
        _, report = run_session(
            seed=seed,
            orders=params.orders,
            latency=latency,
            symbols=params.symbols,
            step_ms=params.step_ms,
            sessions=KoreaSessions() if params.sessions else None,
            journal=False,
            on_step=None if timeout is None else _deadline(timeout),
        )
    except DayTimeout as exc:
        row.update(status="timeout", error=str(exc))
    except Exception as exc:  # a day that crashes is reported, and the sweep goes on
        logger.debug("day %s failed", seed, exc_info=True)
        text = traceback.format_exception_only(exc)[-1].strip()
        row.update(status="error", error=text)
    else:
        cancels = report.cancels
        row.update(
            status="ok" if report.ok else "mismatch",
            error="" if report.ok else _first_difference(report.mismatches, report),
            mismatches=len(report.mismatches),
            invariant_violations=len(report.invariant_violations),
            orders=report.orders,
            events=report.events,
            placed=report.placements["sent"],
            modifies=report.placements["modifies"],
            shares_filled=report.shares["filled"],
            shares_cancelled=report.shares["cancelled"],
            cancels_requested=cancels["requested"],
            cancels_allowed=cancels["allowed"],
            cancels_confirmed=cancels["confirmed"],
        )
        for kind in RACE_KINDS:
            row[f"race_{kind}"] = report.races.get(kind, 0)
        for reason in _REFUSALS:
            row[f"refused_{reason}"] = cancels["refused"].get(reason, 0)
        for code, count in cancels["rejected"].items():
            row[f"cancel_rejected_{code}"] = count
        for code, count in report.placements["rejected"].items():
            row[f"place_rejected_{code}"] = count
    row["seconds"] = round(time.perf_counter() - started, 6)
    return row


def _first_difference(mismatches: Sequence[object], report: Any) -> str:
    found = [str(m) for m in mismatches[:1]] + list(report.invariant_violations[:1])
    return f"{len(mismatches)} differences; first: {found[0]}" if found else ""


# -- the grid ---------------------------------------------------------------------------------
def grid(values: Mapping[str, Sequence[Any]]) -> tuple[Params, ...]:
    """Return every combination of ``values`` (``{"orders": [50, 500], "reorder": [False,
    True]}``) as parameter sets, in a fixed order: the product, first key slowest."""
    names = list(values)
    unknown = set(names) - set(attrs.fields_dict(Params))
    if unknown:
        raise ValueError(f"unknown sweep parameters: {', '.join(sorted(unknown))}")
    sets: list[Params] = []
    for combo in itertools.product(*(values[n] for n in names)):
        params = Params(**dict(zip(names, combo, strict=True)))
        if params not in sets:
            sets.append(params)
    return tuple(sets)


# -- aggregates -------------------------------------------------------------------------------
def _count_columns(rows: Iterable[Mapping[str, Any]], prefix: str) -> list[str]:
    return sorted({k for row in rows for k in row if k.startswith(prefix)})


def aggregate(rows: Sequence[Mapping[str, Any]], sets: Sequence[Params]) -> dict[str, Any]:
    """Return the sweep's aggregates: totals, per parameter set, and every failed day.

    Only the rows' counts take part, in (parameter set, seed) order: the result is the same
    whatever worker ran which day. Keys: ``days``, ``failed``, ``mismatches``,
    ``mismatched_days``, ``races`` (totals by kind), ``param_sets`` and ``failures``.
    """
    index = {p: i for i, p in enumerate(sets)}
    by_set: dict[int, list[Mapping[str, Any]]] = {i: [] for i in range(len(sets))}
    for row in rows:
        by_set[row["set"]].append(row)
    out_sets: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    totals: dict[str, int] = dict.fromkeys(RACE_KINDS, 0)
    for params, i in index.items():
        days = sorted(by_set[i], key=lambda r: r["seed"])
        done = [r for r in days if r["status"] in ("ok", "mismatch")]
        races: dict[str, dict[str, float]] = {}
        for kind in RACE_KINDS:
            counts = [int(r[f"race_{kind}"]) for r in done]
            total = sum(counts)
            totals[kind] += total
            races[kind] = {
                "total": total,
                "mean": round(total / len(counts), 6) if counts else 0.0,
                "max": max(counts, default=0),
            }

        def summed(prefix: str, done: list[Mapping[str, Any]] = done) -> dict[str, int]:
            cols = _count_columns(done, prefix)
            sums = {c[len(prefix) :]: sum(int(r.get(c, 0)) for r in done) for c in cols}
            return {k: v for k, v in sums.items() if v}

        filled = sum(int(r["shares_filled"]) for r in done)
        cancelled = sum(int(r["shares_cancelled"]) for r in done)
        allowed = sum(int(r["cancels_allowed"]) for r in done)
        confirmed = sum(int(r["cancels_confirmed"]) for r in done)
        out_sets.append(
            {
                "set": i,
                "params": params.to_dict(),
                "days": len(days),
                "failed": sum(r["status"] in ("error", "timeout") for r in days),
                "mismatches": sum(int(r["mismatches"]) for r in done),
                "mismatched_days": sum(r["status"] == "mismatch" for r in done),
                "orders": sum(int(r["orders"]) for r in done),
                "races": races,
                "refused": summed("refused_"),
                "cancel_rejected": summed("cancel_rejected_"),
                "place_rejected": summed("place_rejected_"),
                "fill_ratio": round(filled / (filled + cancelled), 6) if filled + cancelled else 0,
                "cancel_ratio": round(confirmed / allowed, 6) if allowed else 0.0,
            }
        )
        failures.extend(
            {
                "seed": r["seed"],
                "set": i,
                "params": params.to_dict(),
                "status": r["status"],
                "error": r.get("error", ""),
                "command": params.command(r["seed"]),
            }
            for r in days
            if r["status"] != "ok"
        )
    return {
        "days": sum(s["days"] for s in out_sets),
        "failed": sum(s["failed"] for s in out_sets),
        "mismatches": sum(s["mismatches"] for s in out_sets),
        "mismatched_days": sum(s["mismatched_days"] for s in out_sets),
        "races": {k: v for k, v in totals.items() if v},
        "param_sets": out_sets,
        "failures": failures,
    }


def rows_frame(rows: Sequence[Mapping[str, Any]]) -> Any:
    """Return every day's row as a pandas DataFrame, sorted by parameter set and seed."""
    from engine.frames import require_pandas

    pd = require_pandas("rows_frame()")
    frame = pd.DataFrame(list(rows))
    counts = [
        c
        for c in frame.columns
        if c.startswith(("race_", "refused_", "cancel_rejected_", "place_rejected_"))
    ]
    frame[counts] = frame[counts].fillna(0).astype("int64")
    frame["status"] = pd.Categorical(frame["status"], ["ok", "mismatch", "error", "timeout"])
    frame["error"] = frame["error"].fillna("").astype("string") if "error" in frame else ""
    return frame.sort_values(["set", "seed"], kind="stable").reset_index(drop=True)


# -- running on Dask --------------------------------------------------------------------------
@attrs.frozen
class SweepResult:
    """The rows of every day (in completion order) and whether the sweep was interrupted."""

    rows: list[dict[str, Any]]
    interrupted: bool = False


def _days(seeds: Sequence[int], sets: Sequence[Params]) -> Iterator[tuple[int, int, Params]]:
    for i, params in enumerate(sets):
        for seed in seeds:
            yield i, seed, params


def run_serial(
    seeds: Sequence[int], sets: Sequence[Params], *, timeout: float | None = None
) -> list[dict[str, Any]]:
    """Run every day in this process, one after the other (no Dask): the same rows."""
    rows = []
    for i, seed, params in _days(seeds, sets):
        row = run_day(seed, params, timeout)
        row["set"] = i
        rows.append(row)
    return rows


def run_sweep(
    seeds: Sequence[int],
    sets: Sequence[Params],
    *,
    client: Any,
    timeout: float | None = None,
    on_row: Callable[[dict[str, Any]], object] | None = None,
    day: Callable[..., dict[str, Any]] = run_day,
) -> SweepResult:
    """Run every (seed, parameter set) day on the Dask ``client`` and return the rows.

    ``on_row`` is called with each row as it arrives (a progress bar). A day whose task fails
    in the cluster (a worker died...) gets an ``error`` row; the sweep goes on. ``day`` is the
    function run per day (``run_day``; tests pass one that fails on purpose).
    Ctrl-C cancels what is left and returns what was done with ``interrupted`` set.
    """
    distributed = require_dask()
    futures: dict[Any, tuple[int, int, Params]] = {}
    sweep = uuid.uuid4().hex[:12]  # keys unique to this sweep: a cluster may hold older ones
    for i, seed, params in _days(seeds, sets):
        key = f"day-{sweep}-{i}-{seed}"
        future = client.submit(day, seed, params, timeout, key=key, pure=False)
        futures[future] = (i, seed, params)
    rows: list[dict[str, Any]] = []
    try:
        for future in distributed.as_completed(list(futures)):
            i, seed, params = futures[future]
            try:
                row = dict(future.result())
            except Exception as exc:
                text = traceback.format_exception_only(exc)[-1].strip()
                row = {"seed": seed, **params.to_dict(), "status": "error", "error": text}
            row["set"] = i
            rows.append(row)
            if on_row is not None:
                on_row(row)
    except KeyboardInterrupt:
        client.cancel(list(futures), force=True)
        return SweepResult(rows, interrupted=True)
    return SweepResult(rows)
