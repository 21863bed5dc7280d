"""``order-engine sweep``: simulated days over seeds x parameter sets, on Dask distributed.

The grid comes from repeated options (``--latency-ms 0 --latency-ms 5-150``, ``--reorder
--no-reorder``, ...) or a TOML/JSON file (``--grid``); every combination runs with every seed.
By default the days run on a local Dask cluster started for the sweep (``--workers``, one
process per worker, one thread each); ``--scheduler tcp://HOST:8786`` runs them on an existing
cluster instead. Exit status: 0 when every day matched, 1 when a day mismatched, failed or timed
out (each is listed with the command that reproduces it), 2 for bad options or a missing extra,
130 when interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from adapters.cli.simulate import _latency, _positive, _symbols
from adapters.sweep import RACE_KINDS, Params, aggregate, grid, parse_seeds
from engine.frames import MissingExtra

__all__ = ["add_arguments", "run_sweep_command"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

#: The options that may be repeated to form the grid, and the Params field each one fills.
_GRID_OPTIONS = {
    "orders": "orders",
    "latency_ms": "latency",
    "reorder": "reorder",
    "symbols": "symbols",
    "step_ms": "step_ms",
    "sessions": "sessions",
}


def _seeds(text: str) -> tuple[int, ...]:
    try:
        return parse_seeds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, not {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected more than 0 seconds, not {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``sweep``."""
    parser.add_argument(
        "--seeds",
        type=_seeds,
        default=parse_seeds("1-10"),
        metavar="LIST",
        help="seeds: 1-1000, 1,5,9 or a mix (default 1-10)",
    )
    grid_options = parser.add_argument_group(
        "grid (repeat an option for several values; every combination runs)"
    )
    grid_options.add_argument("--orders", type=_positive, action="append", metavar="N")
    grid_options.add_argument("--latency-ms", type=_latency, action="append", metavar="N|LOW-HIGH")
    grid_options.add_argument("--reorder", action="append_const", const=True)
    grid_options.add_argument("--no-reorder", dest="reorder", action="append_const", const=False)
    grid_options.add_argument("--symbols", type=_symbols, action="append", metavar="CODES")
    grid_options.add_argument("--step-ms", type=_positive, action="append", metavar="N")
    grid_options.add_argument("--sessions", action="append_const", const=True)
    grid_options.add_argument("--no-sessions", dest="sessions", action="append_const", const=False)
    grid_options.add_argument(
        "--grid",
        metavar="FILE",
        help="a TOML or JSON file of parameter lists (options given here override its keys)",
    )
    where = parser.add_argument_group("where the days run")
    where.add_argument(
        "--workers",
        type=_positive,
        default=os.cpu_count() or 1,
        help="worker processes of the local cluster (default: the number of cores)",
    )
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on an existing Dask cluster (tcp://HOST:8786) instead of a local one",
    )
    parser.add_argument(
        "--day-timeout",
        type=_seconds,
        metavar="SECONDS",
        help="a day running longer fails as timed out (default: no limit)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument(
        "--out", metavar="FILE", help="write every day's row to FILE.parquet or FILE.csv"
    )
    parser.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="progress bar on stderr (auto: on a terminal)",
    )


def _read_grid(path: str) -> dict[str, list[Any]]:
    """Read a grid file: keys are Params fields (or ``seeds``), values a value or a list."""
    file = Path(path)
    text = file.read_text(encoding="utf-8")
    if file.suffix.lower() == ".toml":
        data: Any = tomllib.loads(text)
    elif file.suffix.lower() == ".json":
        data = json.loads(text)
    else:
        raise ValueError(f"{path}: a grid file ends in .toml or .json")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a grid file holds one table of parameter lists")
    return {k: v if isinstance(v, list) else [v] for k, v in data.items()}


def _parameter_sets(args: argparse.Namespace) -> tuple[tuple[int, ...], tuple[Params, ...]]:
    values: dict[str, list[Any]] = {}
    seeds: tuple[int, ...] = args.seeds
    if args.grid:
        values = _read_grid(args.grid)
        if "seeds" in values:
            raw = values.pop("seeds")
            if len(raw) == 1 and isinstance(raw[0], str):
                seeds = parse_seeds(raw[0])
            elif all(type(s) is int for s in raw):
                seeds = parse_seeds(",".join(map(str, raw)))
            else:
                raise ValueError("seeds in a grid file are a string (1-100) or a list of ints")
        if "symbols" in values:
            values["symbols"] = [
                tuple(s.split(",")) if isinstance(s, str) else tuple(s) for s in values["symbols"]
            ]
    for option, field in _GRID_OPTIONS.items():
        given = getattr(args, option)
        if given:
            values[field] = list(dict.fromkeys(given))
    return seeds, grid(values)


def run_sweep_command(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    """Run ``sweep`` with parsed ``args``; return the exit status."""
    try:
        seeds, sets = _parameter_sets(args)
        if args.out:
            from adapters.frames_io import check_frame_path

            check_frame_path(args.out)
        from adapters.sweep import require_dask

        require_dask()
        from engine.frames import require_pandas

        require_pandas("order-engine sweep")
    except MissingExtra as exc:
        print(str(exc), file=err)
        return 2
    except (OSError, ValueError, TypeError) as exc:
        print(f"order-engine sweep: {exc}", file=err)
        return 2
    total = len(seeds) * len(sets)
    show = args.progress == "always" or (args.progress == "auto" and err.isatty())
    started = time.perf_counter()
    try:
        result = _run(args, seeds, sets, total, show, err)
    except KeyboardInterrupt:
        print("order-engine sweep: interrupted; the cluster is stopped", file=err)
        return 130
    except OSError as exc:  # the scheduler could not be reached...
        print(f"order-engine sweep: {exc}", file=err)
        return 2
    elapsed = time.perf_counter() - started
    rows = result.rows
    if result.interrupted:
        print(
            f"order-engine sweep: interrupted after {len(rows):,} of {total:,} days; "
            "the cluster is stopped",
            file=err,
        )
        return 130
    summary = aggregate(rows, sets)
    if args.out:
        from adapters.frames_io import write_frame
        from adapters.sweep import rows_frame

        try:
            write_frame(rows_frame(rows), args.out)
        except MissingExtra as exc:
            print(str(exc), file=err)
            return 2
        except OSError as exc:
            print(f"order-engine sweep: cannot write {args.out}: {exc}", file=err)
            return 2
    if args.json:
        json.dump({"seeds": len(seeds), **summary}, out, ensure_ascii=False)
        out.write("\n")
    else:
        _table(summary, len(seeds), elapsed, out)
    for failure in summary["failures"]:
        print(
            f"day failed ({failure['status']}): seed {failure['seed']}, set {failure['set']}: "
            f"{failure['error']}\n  reproduce: {failure['command']}",
            file=err,
        )
    return 0 if not summary["failures"] else 1


def _run(
    args: argparse.Namespace,
    seeds: Sequence[int],
    sets: Sequence[Params],
    total: int,
    show: bool,
    err: IO[str],
) -> Any:
    import distributed

    from adapters.sweep import run_sweep

    bar: Any = None
    if show:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="day", file=err, dynamic_ncols=True, desc="sweep")
    cluster: Any = None
    client: Any = None
    try:
        if args.scheduler:
            client = distributed.Client(args.scheduler, timeout="10s")  # type: ignore[no-untyped-call]
        else:
            cluster = distributed.LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=args.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",  # no fixed port: others may run clusters here
                silence_logs=logging.ERROR,
            )
            client = distributed.Client(cluster)  # type: ignore[no-untyped-call]

        def on_row(row: dict[str, Any]) -> None:
            if bar is not None:
                bar.update(1)
                if row["status"] != "ok":
                    bar.write(f"day failed ({row['status']}): seed {row['seed']}", file=err)

        return run_sweep(seeds, sets, client=client, timeout=args.day_timeout, on_row=on_row)
    finally:
        if bar is not None:
            bar.close()
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


def _table(summary: dict[str, Any], seeds: int, elapsed: float, out: IO[str]) -> None:
    def line(text: str = "") -> None:
        out.write(text + "\n")

    sets = summary["param_sets"]
    line(
        f"order-engine sweep: {summary['days']:,} days ({seeds:,} seeds x {len(sets)} parameter "
        f"sets) in {elapsed:,.1f} s"
    )
    for s in sets:
        p = Params(**{**s["params"], "symbols": tuple(s["params"]["symbols"].split(","))})
        line()
        line(f"[{s['set']}] {p.label()}")
        line(
            f"  days {s['days']:,}, failed {s['failed']:,}, mismatches {s['mismatches']:,} "
            f"({s['mismatched_days']:,} days), orders {s['orders']:,}"
        )
        line(
            f"  fill ratio {s['fill_ratio']:.1%} (shares filled of those not moved by "
            f"modifies), cancel ratio {s['cancel_ratio']:.1%} (sent cancels confirmed)"
        )
        line(f"  {'race':<24}{'total':>9}{'mean':>9}{'max':>7}")
        for kind in RACE_KINDS:
            r = s["races"][kind]
            if r["total"]:
                line(f"  {kind:<24}{r['total']:>9,}{r['mean']:>9.2f}{r['max']:>7,}")
        for title, key in (
            ("refused by the engine", "refused"),
            ("cancels rejected", "cancel_rejected"),
            ("orders rejected", "place_rejected"),
        ):
            counts = s[key]
            text = ", ".join(f"{k} {v:,}" for k, v in counts.items()) if counts else "none"
            line(f"  {title}: {text}")
    line()
    races = ", ".join(f"{k} {v:,}" for k, v in summary["races"].items()) or "none"
    verdict = (
        "every day MATCHED"
        if not summary["failures"]
        else (f"{len(summary['failures']):,} days FAILED (listed on stderr)")
    )
    line(f"Total: {summary['days']:,} days, {summary['mismatches']:,} mismatches; {verdict}")
    line(f"Races: {races}")
