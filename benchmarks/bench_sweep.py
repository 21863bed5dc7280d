"""Days per second of a sweep: a plain serial loop against Dask with 1 and 2 workers.

    python benchmarks/bench_sweep.py [--days 16] [--large-days 8] [--small-orders 50]
                                     [--large-orders 2000]

Two kinds of day are measured: small (``--small-orders`` orders, a bar every 5 s: a day of a
few tenths of a second) and large (``--large-orders`` orders, a bar every 200 ms: the default
day of ``order-engine simulate``). For each, the same days (seeds 1..N) run

- in a plain loop in this process (:func:`adapters.sweep.run_serial`), and
- on a local Dask cluster of 1 and of 2 worker processes (one thread each), started (and the
  simulator imported in every worker) before the clock starts; start-up is printed apart.

Printed: days per second and the ratio to the serial loop (above 1: faster than the loop). The
aggregates of every run are checked equal (the sweep is deterministic whatever the workers).
On a 2-core machine expect the 2-worker cluster to beat the loop on large days and Dask's
per-task overhead to show on small ones.
"""

from __future__ import annotations

import argparse
import logging
import time

import distributed

from adapters.sweep import Params, aggregate, run_serial, run_sweep


def _warm() -> None:
    import adapters.sweep  # noqa: F401


def _measure(seeds: tuple[int, ...], params: Params, workers: int) -> tuple[float, float, dict]:
    started = time.perf_counter()
    with (
        distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.run(_warm)  # every worker has imported the simulator: the same start as the loop
        start_up = time.perf_counter() - started
        started = time.perf_counter()
        done = run_sweep(seeds, (params,), client=client)
        elapsed = time.perf_counter() - started
    return start_up, elapsed, aggregate(done.rows, (params,))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=16, help="small days to run (default 16)")
    parser.add_argument("--large-days", type=int, default=8, help="large days (default 8)")
    parser.add_argument("--small-orders", type=int, default=50)
    parser.add_argument("--large-orders", type=int, default=2000)
    args = parser.parse_args()
    kinds = {
        "small": (args.days, Params(orders=args.small_orders, step_ms=5000)),
        "large": (args.large_days, Params(orders=args.large_orders, step_ms=200)),
    }
    print("days/s (ratio to the serial loop)")
    for name, (days, params) in kinds.items():
        seeds = tuple(range(1, days + 1))
        started = time.perf_counter()
        serial = aggregate(run_serial(seeds, (params,)), (params,))
        loop = days / (time.perf_counter() - started)
        print(f"{name:>6}: {days} days ({params.label()})")
        print(f"        {'serial loop':<20}{loop:8.2f} days/s")
        for workers in (1, 2):
            start_up, elapsed, result = _measure(seeds, params, workers)
            assert result == serial, "a sweep's aggregates must not depend on the workers"
            rate = days / elapsed
            label = f"dask, {workers} worker{'s' if workers > 1 else ''}"
            print(
                f"        {label:<20}{rate:8.2f} days/s  x{rate / loop:.2f}  "
                f"(cluster start-up {start_up:.1f} s, not counted)"
            )


if __name__ == "__main__":
    main()
