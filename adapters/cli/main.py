"""The ``order-engine`` console script."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from engine import __version__

#: ``-v`` turns the library's logging on at INFO, ``-vv`` at DEBUG.
_VERBOSITY = {1: "INFO", 2: "DEBUG"}

#: The exit status after the reader of standard output went away (``| head``): 128 + SIGPIPE.
EXIT_BROKEN_PIPE = 141


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    A reader that closes standard output early (``order-engine simulate | head``) ends the
    command quietly, with status 141 as a program stopped by SIGPIPE has, and no traceback.
    """
    try:
        status = _main(argv)
        sys.stdout.flush()  # inside the try: a closed pipe found at exit is quiet too
    except BrokenPipeError:
        # Python would complain again when it flushes stdout at exit: point it at devnull.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE
    return status


def _add_logging_options(parser: argparse.ArgumentParser, default: object = None) -> None:
    """Add ``-v/--verbose`` and ``--log-level`` (skipped where a command has its own ``-v``).

    On the sub-commands the default is ``SUPPRESS``, so that an option given before the
    command name is not reset by the sub-command's own default.
    """
    taken = parser._option_string_actions
    if "-v" not in taken and "--verbose" not in taken:
        parser.add_argument(
            "-v",
            "--verbose",
            action="count",
            default=0 if default is None else default,
            help="log what the library does on stderr (-v: INFO, -vv: DEBUG)",
        )
    if "--log-level" not in taken:
        parser.add_argument(
            "--log-level",
            type=str.upper,
            choices=("DEBUG", "INFO", "WARNING", "ERROR"),
            default=default,
            help="log the library's records at this level and above on stderr",
        )


def _configure_logging(args: argparse.Namespace) -> None:
    """Send the library's log records to stderr at the level ``-v`` or ``--log-level`` asks."""
    level = getattr(args, "log_level", None) or _VERBOSITY.get(min(getattr(args, "verbose", 0), 2))
    if level is not None:
        logging.basicConfig(
            level=level,
            stream=sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )


class _LazyParser(argparse.ArgumentParser):
    """A sub-command's parser that adds its options only when that sub-command is parsed.

    Building every sub-command's options imports every sub-command's module (the Kiwoom
    client and ``requests`` among them, about a third of a CPU second); ``simulate`` needs
    none of them. The options, the help and the errors are the same as when built eagerly.
    """

    _loader: Callable[[argparse.ArgumentParser], None] | None = None
    _loaded = False

    def load_with(self, loader: Callable[[argparse.ArgumentParser], None]) -> None:
        """Add the options with ``loader`` on the first parse of this sub-command."""
        self._loader = loader

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            if self._loader is not None:
                self._loader(self)
            _add_logging_options(self, default=argparse.SUPPRESS)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """Add the options if not yet done, then parse as usual."""
        self._load()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        """The help, with the options added first."""
        self._load()
        return super().format_help()

    def format_usage(self) -> str:
        """The usage line, with the options added first."""
        self._load()
        return super().format_usage()


#: Where each sub-command's options are added: (module, function), imported when it is parsed.
_OPTIONS: dict[str, tuple[str, str]] = {
    "simulate": ("adapters.cli.simulate", "add_arguments"),
    "sim-server": ("adapters.cli.sim_server", "add_arguments"),
    "watch": ("adapters.cli.watch", "add_arguments"),
    "cancel": ("adapters.cli.kiwoom_cli", "add_cancel_arguments"),
    "open-orders": ("adapters.cli.kiwoom_cli", "add_open_orders_arguments"),
    "sweep": ("adapters.cli.sweep", "add_arguments"),
    "report": ("adapters.cli.report", "add_arguments"),
    "place": ("adapters.cli.place", "add_place_arguments"),
}


def _options(command: str) -> Callable[[argparse.ArgumentParser], None]:
    """Return what adds ``command``'s options, importing its module only when called."""
    module, function = _OPTIONS[command]

    def add(parser: argparse.ArgumentParser) -> None:
        getattr(importlib.import_module(module), function)(parser)

    return add


def _main(argv: Sequence[str] | None) -> int:
    parser = argparse.ArgumentParser(
        prog="order-engine",
        description="Order state-machine engine for Korean equities (Kiwoom REST).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_logging_options(parser)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_LazyParser)
    simulate = sub.add_parser(
        "simulate",
        help="run a seeded simulated trading session (the main job)",
        description="Run a seeded simulated trading session through the engine and compare "
        "the engine's view with the exchange's truth. Exit status 0 only when they match.",
    )
    simulate.load_with(_options("simulate"))
    server = sub.add_parser(
        "sim-server",
        help="serve a simulated exchange over Kiwoom's REST and WebSocket protocols on loopback",
        description="Start a Kiwoom-compatible REST and real-time WebSocket server backed by "
        "the simulated exchange. The first line on stdout is its REST base URL, the second its "
        "WebSocket base URL (path /api/dostk/websocket); it serves until interrupted.",
    )
    server.load_with(_options("sim-server"))
    watch = sub.add_parser(
        "watch",
        help="a live view of the account's orders from the real-time feed (after a reconcile)",
        description="Reconcile the account over REST, then print one line per change of every "
        "order from Kiwoom's real-time feed (type 00). Credentials come from KIWOOM_APPKEY and "
        "KIWOOM_SECRETKEY.",
    )
    watch.load_with(_options("watch"))
    cancel = sub.add_parser(
        "cancel",
        help="cancel an order through Kiwoom (kt10003), only if the engine allows it",
        description="Read the account (ka10075, kt00007), let the engine decide, print the "
        "decision, send kt10003 only when allowed, and print the outcome. Credentials come "
        "from KIWOOM_APPKEY and KIWOOM_SECRETKEY. Exit status: 0 accepted, 1 the account could "
        "not be read, 2 bad options, 3 refused by the engine (nothing sent), 4 rejected by "
        "Kiwoom, 5 outcome unknown (do not send again).",
    )
    cancel.load_with(_options("cancel"))
    open_orders = sub.add_parser(
        "open-orders",
        help="list the account's open orders (ka10075, every page)",
        description="List the open orders of the account (ka10075, following every page). "
        "Credentials come from KIWOOM_APPKEY and KIWOOM_SECRETKEY.",
    )
    open_orders.load_with(_options("open-orders"))
    sweep = sub.add_parser(
        "sweep",
        help="run simulated days over seeds x parameter sets on Dask (needs the [sweep] extra)",
        description="Run independent simulated days over a grid of seeds and parameter sets "
        "on a local Dask cluster (or an existing one with --scheduler) and aggregate them per "
        "parameter set. Exit status 0 only when every day matched.",
    )
    sweep.load_with(_options("sweep"))
    report = sub.add_parser(
        "report",
        help="draw a day's events (--events-out file or journal) as one HTML file",
        description="Draw the day recorded in an events file (JSON lines of engine events, "
        "as simulate --events-out writes) as one self-contained HTML file (needs [report]).",
    )
    report.load_with(_options("report"))
    place = sub.add_parser(
        "place",
        help="send a new buy or sell order through Kiwoom (kt10000/kt10001)",
        description="Send one new order and print its order number. Credentials come from "
        "KIWOOM_APPKEY and KIWOOM_SECRETKEY. Exit status: 0 accepted, 1 not sent (no "
        "connection, no token), 2 bad options, 4 rejected by Kiwoom, 5 outcome unknown "
        "(check open-orders before placing again).",
    )
    place.load_with(_options("place"))
    sub.add_parser("demo", help="walk the kt10003 examples of Kiwoom's guide through the engine")
    doc = sub.add_parser("lifecycle-doc", help="write the lifecycle diagram and state table")
    doc.add_argument("output", nargs="?", help="file to write (default: standard output)")
    doc.add_argument("--check", action="store_true", help="exit 1 if OUTPUT is out of date")
    args = parser.parse_args(argv)
    if args.command == "lifecycle-doc" and args.check and args.output is None:
        doc.error("--check needs the file to compare, e.g. docs/lifecycle.md")
    _configure_logging(args)

    if args.command == "simulate":
        from adapters.cli.simulate import run_simulate

        return run_simulate(args, sys.stdout, sys.stderr)

    if args.command == "sim-server":
        from adapters.cli.sim_server import run_sim_server

        return run_sim_server(args, sys.stdout, sys.stderr)

    if args.command == "watch":
        from adapters.cli.watch import run_watch

        return run_watch(args, sys.stdout, sys.stderr)

    if args.command in ("cancel", "open-orders"):
        from adapters.cli.kiwoom_cli import run_cancel, run_open_orders

        run = run_cancel if args.command == "cancel" else run_open_orders
        return run(args, sys.stdout, sys.stderr)

    if args.command == "sweep":
        from adapters.cli.sweep import run_sweep_command

        return run_sweep_command(args, sys.stdout, sys.stderr)

    if args.command == "report":
        from adapters.cli.report import run_report

        return run_report(args, sys.stdout, sys.stderr)
    if args.command == "place":
        from adapters.cli.place import run_place

        return run_place(args, sys.stdout, sys.stderr)

    if args.command == "demo":
        from adapters.cli.demo import run_demo

        return run_demo(sys.stdout)

    from engine.lifecycle import render_lifecycle_doc

    text = render_lifecycle_doc()
    if args.output is None:
        sys.stdout.write(text)
        return 0
    path = Path(args.output)
    if args.check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            print(f"{path} is out of date: run order-engine lifecycle-doc {path}", file=sys.stderr)
            return 1
        return 0
    path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
