"""Simulated events per CPU second of ``order-engine simulate``, against a baseline commit.

    python benchmarks/bench_sim.py [--orders 20000] [--rounds 3] [--seed 7] [--latency-ms 5-150]
    python benchmarks/bench_sim.py --baseline 0650a6f [--orders 20000] [--rounds 5]

Each measurement is one whole ``order-engine simulate --json`` process (imports included): its
CPU time (user + system, from ``resource.getrusage(RUSAGE_CHILDREN)``) and the events it
reports. "Events" are what the engine took: every delivered exchange fact and the engine's own
cancel reservations. The figure is events per CPU second, so a busy machine (other processes
on the same cores) slows the wall clock but hardly the figure. Both import from compiled
bytecode, as after a pip install: this tree's is written once into a scratch directory
(``PYTHONPYCACHEPREFIX``) even where ``PYTHONDONTWRITEBYTECODE`` is set.

With ``--baseline REV`` the commit ``REV`` is exported (``git archive``) into
``.bench/src-<sha>`` and installed into its own virtual environment ``.bench/venv-<sha>`` (both
reused on later runs; ``.bench/`` is git-ignored), and the rounds alternate between the baseline
and this tree (which one goes first alternates too), so that both see the same machine. It
prints the median and the range of each, and the ratio of the medians (and its range over the
rounds). It also checks that the same seed gives the same bytes run after run, and says whether
the baseline's numbers (its JSON report) are the same as this tree's.

Without ``--baseline`` only this tree is measured. ``--profile`` prints a cProfile of one
in-process run instead (the 25 most expensive functions by own time). ``--share`` measures,
in this process, one run's end-to-end events per CPU second and the engine's share of it: a
second, identical run (the simulation is deterministic) records every call the harness made
into the engine (``apply``, ``decide_cancel``, ``request_cancel``), and those calls are then
replayed, timed, into a fresh book (target: the engine at most half of the time).

The issue's target: at least 2x the baseline's events per CPU second (aim 3x).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".bench"


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()


def baseline_python(rev: str) -> tuple[Path, str]:
    """Return the interpreter of a virtualenv with commit ``rev`` installed (made once)."""
    sha = _git("rev-parse", "--verify", f"{rev}^{{commit}}")
    short = sha[:10]
    src = CACHE / f"src-{short}"
    venv = CACHE / f"venv-{short}"
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if marker.exists():
        return python, sha
    CACHE.mkdir(exist_ok=True)
    (CACHE / ".gitignore").write_text("*\n")
    if not src.exists():
        print(f"exporting {short} into {src} ...", file=sys.stderr)
        src.mkdir()
        archive = subprocess.run(
            ["git", "archive", "--format=tar", sha], cwd=ROOT, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    print(f"installing {short} into {venv} (once) ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(src)], check=True)
    marker.write_text(sha + "\n")
    return python, sha


def _command(python: Path, args: argparse.Namespace) -> list[str]:
    return [
        str(python),
        "-c",
        "import sys; from adapters.cli.main import main; sys.exit(main())",
        "simulate",
        "--json",
        "--progress",
        "never",
        "--orders",
        str(args.orders),
        "--seed",
        str(args.seed),
        "--latency-ms",
        args.latency_ms,
    ]


def bytecode_env(scratch: Path) -> dict[str, str]:
    """Return an environment in which this tree's modules import from compiled bytecode.

    The baseline is installed with pip, which compiles its modules; this tree is usually an
    editable install, and with ``PYTHONDONTWRITEBYTECODE`` set (as on this machine) every run
    would compile its sources again, a cost the baseline does not pay (about 0.1-0.15 CPU s).
    Here this tree's bytecode is written once under ``scratch`` (``PYTHONPYCACHEPREFIX``), so
    both import the same way.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(scratch / "pycache")
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "engine", "adapters"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    return env


def measure(
    python: Path, args: argparse.Namespace, cwd: Path, env: dict[str, str] | None = None
) -> tuple[float, int, bytes]:
    """Run one simulation in a fresh process; return (CPU seconds, events, its stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        _command(python, args), cwd=cwd, env=env, capture_output=True, check=False
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(
            f"{python}: exit {done.returncode}\n{done.stderr.decode(errors='replace')[-2000:]}"
        )
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    events = json.loads(done.stdout)["events"]
    return cpu, events, done.stdout


def _summary(name: str, rates: list[float]) -> str:
    return (
        f"{name}: median {statistics.median(rates):,.0f} events/CPU s "
        f"(range {min(rates):,.0f} - {max(rates):,.0f}, {len(rates)} rounds)"
    )


def profile(args: argparse.Namespace) -> None:
    """Print a cProfile of one in-process simulation (own time, top 25)."""
    import cProfile
    import pstats

    sys.path.insert(0, str(ROOT))
    from adapters.cli.simulate import batch_gc
    from adapters.sim import Latency, run_session

    latency = Latency.uniform(args.latency_ms)
    profiler = cProfile.Profile()
    with batch_gc():
        profiler.runcall(
            run_session, seed=args.seed, orders=args.orders, latency=latency, journal=False
        )
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def engine_share(args: argparse.Namespace) -> None:
    """Print one in-process run's events per CPU second and the engine's share of its time."""
    import gc
    import time
    from contextlib import suppress

    sys.path.insert(0, str(ROOT))
    from adapters.cli.simulate import batch_gc
    from adapters.sim import Latency, run_session, session
    from engine import CancelRefused, ModifyRefused, OrderBook

    latency = Latency.uniform(args.latency_ms)
    calls: list[tuple[str, Any, Any, Any]] = []

    class RecordingBook(OrderBook):
        """An OrderBook that notes every call the harness makes (for the replay)."""

        def apply(self, event: Any) -> Any:
            calls.append(("apply", event, None, None))
            return super().apply(event)

        def decide_cancel(self, ord_no: str, qty: int | str = 0, **kw: Any) -> Any:
            calls.append(("decide", ord_no, qty, None))
            return super().decide_cancel(ord_no, qty, **kw)

        def request_cancel(self, ord_no: str, qty: int | str = 0, **kw: Any) -> Any:
            calls.append(("request", ord_no, qty, kw.get("ts")))
            return super().request_cancel(ord_no, qty, **kw)

        def request_modify(self, ord_no: str, qty: int | str, price: int, **kw: Any) -> Any:
            calls.append(("modify", ord_no, (qty, price), kw.get("ts")))
            return super().request_modify(ord_no, qty, price, **kw)

    def run() -> tuple[float, int]:
        with batch_gc():
            started = time.process_time()
            _, report = run_session(
                seed=args.seed, orders=args.orders, latency=latency, journal=False
            )
            return time.process_time() - started, report.events

    elapsed, events = min(run() for _ in range(args.rounds))
    real = session.OrderBook  # type: ignore[attr-defined]
    session.OrderBook = RecordingBook  # type: ignore[attr-defined]
    try:
        run()
    finally:
        session.OrderBook = real  # type: ignore[attr-defined]

    def replay() -> float:
        book = OrderBook(journal=False)
        apply, decide, request = book.apply, book.decide_cancel, book.request_cancel
        modify = book.request_modify
        gc.collect()
        started = time.process_time()
        for kind, a, b, ts in calls:
            if kind == "apply":
                apply(a)
            elif kind == "decide":
                decide(a, b)
            elif kind == "modify":
                with suppress(ModifyRefused):  # refused in the timed run too
                    modify(a, *b, ts=ts)
            else:
                with suppress(CancelRefused):  # refused in the timed run too
                    request(a, b, ts=ts)
        return time.process_time() - started

    with batch_gc():
        engine = min(replay() for _ in range(args.rounds))
    print(
        f"in-process, best of {args.rounds}: {events:,} events in {elapsed:.2f} CPU s = "
        f"{events / elapsed:,.0f} events/CPU s"
    )
    print(
        f"engine alone ({len(calls):,} calls replayed into a fresh book): {engine:.2f} CPU s, "
        f"{engine / elapsed:.1%} of the run (target at most 50%)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--latency-ms", default="5-150")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (at least 3 for a range)")
    parser.add_argument("--baseline", metavar="REV", help="a commit to compare with (own venv)")
    parser.add_argument("--profile", action="store_true", help="profile one run in-process")
    parser.add_argument("--share", action="store_true", help="the engine's share, in-process")
    args = parser.parse_args()
    if args.profile:
        profile(args)
        return
    if args.share:
        engine_share(args)
        return

    here = Path(sys.executable)
    peers: list[tuple[str, Path]] = [("this tree", here)]
    if args.baseline:
        python, sha = baseline_python(args.baseline)
        peers.append((f"baseline {sha[:10]}", python))
    print(
        f"order-engine simulate --orders {args.orders:,} --seed {args.seed} "
        f"--latency-ms {args.latency_ms}: {args.rounds} rounds"
        + (", interleaved with the baseline" if args.baseline else "")
    )
    rates: dict[str, list[float]] = {name: [] for name, _ in peers}
    outputs: dict[str, set[bytes]] = {name: set() for name, _ in peers}
    events_of: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as scratch:
        compiled = bytecode_env(Path(scratch))
        for round_no in range(args.rounds):
            order = peers if round_no % 2 == 0 else peers[::-1]
            line = []
            for name, python in order:
                # The baseline runs outside this tree so that it imports its own code.
                mine = python == here
                cwd = ROOT if mine else Path(scratch)
                env_cpu, events, out = measure(python, args, cwd, compiled if mine else None)
                rates[name].append(events / env_cpu)
                outputs[name].add(out)
                events_of[name] = events
                line.append(f"{name} {env_cpu:.2f} CPU s {events / env_cpu:,.0f}/s")
            print(f"  round {round_no + 1}: " + "; ".join(line), flush=True)
    for name, _ in peers:
        print(_summary(name, rates[name]) + f"; {events_of[name]:,} events a run")
        same = "the same bytes every run" if len(outputs[name]) == 1 else "DIFFERENT BYTES"
        print(f"  determinism ({name}): {same}")
    if args.baseline:
        mine, base = rates["this tree"], rates[peers[1][0]]
        per_round = [a / b for a, b in zip(mine, base, strict=True)]
        ratio = statistics.median(mine) / statistics.median(base)
        print(
            f"ratio (this tree / baseline): {ratio:.2f}x the events per CPU second "
            f"(per round {min(per_round):.2f}x - {max(per_round):.2f}x; target >= 2x, aim 3x)"
        )
        same_numbers = outputs["this tree"] == outputs[peers[1][0]]
        print(
            "  the seed's numbers: "
            + ("unchanged (identical JSON reports)" if same_numbers else "CHANGED (see changelog)")
        )
    if os.environ.get("BENCH_SIM_MAXRSS"):
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"peak resident memory of a run: {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
