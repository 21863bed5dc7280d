"""Days per second of a sweep: a plain serial loop against Dask with 1 and 2 workers.

    python benchmarks/bench_sweep.py [--days 16] [--small-orders 50] [--large-orders 2000]

Two kinds of day are measured: small (``--small-orders`` orders, a bar every 5 s: a day of a
few tenths of a second) and large (``--large-orders`` orders, a bar every 200 ms: the default
day of ``order-engine simulate``). For each, the same ``--days`` days (seeds 1..N) run

- in a plain loop in this process (:func:`adapters.sweep.run_serial`), and
- on a local Dask cluster of 1 and of 2 worker processes (one thread each), started before
  the clock starts (cluster start-up is printed on its own).

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
        client.submit(sum, [1]).result()  # the workers answer
        start_up = time.perf_counter() - started
        started = time.perf_counter()
        done = run_sweep(seeds, (params,), client=client)
        elapsed = time.perf_counter() - started
    return start_up, elapsed, aggregate(done.rows, (params,))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=16)
    parser.add_argument("--small-orders", type=int, default=50)
    parser.add_argument("--large-orders", type=int, default=2000)
    args = parser.parse_args()
    seeds = tuple(range(1, args.days + 1))
    kinds = {
        "small": Params(orders=args.small_orders, step_ms=5000),
        "large": Params(orders=args.large_orders, step_ms=200),
    }
    print(f"{args.days} days of each kind; days/s (ratio to the serial loop)")
    for name, params in kinds.items():
        started = time.perf_counter()
        serial = aggregate(run_serial(seeds, (params,)), (params,))
        loop = args.days / (time.perf_counter() - started)
        print(f"{name:>6} ({params.label()})")
        print(f"        {'serial loop':<20}{loop:8.2f} days/s")
        for workers in (1, 2):
            start_up, elapsed, result = _measure(seeds, params, workers)
            assert result == serial, "a sweep's aggregates must not depend on the workers"
            rate = args.days / elapsed
            label = f"dask, {workers} worker{'s' if workers > 1 else ''}"
            print(
                f"        {label:<20}{rate:8.2f} days/s  x{rate / loop:.2f}  "
                f"(cluster start-up {start_up:.1f} s, not counted)"
            )


if __name__ == "__main__":
    main()
