"""``order-engine sim-server``: serve the Kiwoom-compatible simulator until interrupted.

The first line on standard output is the REST base URL (``http://127.0.0.1:PORT``), the second
the WebSocket base URL of the real-time feed (``ws://127.0.0.1:PORT``; the path is
``/api/dostk/websocket``, as Kiwoom's), flushed at once, so that a script or a test can start the
server with ``--port 0`` and read where it listens.
Ctrl-C or SIGTERM stops it cleanly (exit status 0). The server listens on loopback only unless
``--public`` is given: it hands out tokens to anyone who asks.
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import IO

from adapters.kiwoom.simserver import SimServer
from adapters.kiwoom.transport import is_loopback

__all__ = ["add_arguments", "positive_seconds", "run_sim_server", "stop_on_sigterm"]


def _whole(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected at least {minimum}, not {value}")
        return value

    return parse


def positive_seconds(text: str) -> float:
    """Parse a positive, finite number of seconds (an argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, not {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected positive seconds, not {text!r}")
    return value


def _rate(text: str) -> int | None:
    if text.strip().lower() in ("none", "0", "unlimited"):
        return None
    return _whole(1)(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``sim-server``."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=_whole(0), default=0, help="port to bind (default 0: any free port)"
    )
    parser.add_argument(
        "--public",
        action="store_true",
        help="allow a --host that is not loopback (the server gives a token to anyone)",
    )
    parser.add_argument("--seed", type=_whole(-(2**63)), default=7, help="seed (default 7)")
    parser.add_argument(
        "--rate",
        type=_rate,
        default=5,
        metavar="N",
        help="calls per second allowed per api-id; 0 or none: unlimited (default 5)",
    )
    parser.add_argument(
        "--sessions",
        action="store_true",
        help="enforce Korea-time hours (RC4057 before, RC4058 after, RC4010 on weekends)",
    )
    parser.add_argument(
        "--page-size", type=_whole(1), default=100, help="rows per status-list page (default 100)"
    )
    parser.add_argument(
        "--step-ms", type=_whole(1), default=200, help="wall ms between market bars (default 200)"
    )
    parser.add_argument(
        "--venue-ms",
        type=_whole(0),
        default=0,
        metavar="MS",
        help="delay between the order server's answer and the venue acting on it (default 0)",
    )
    parser.add_argument(
        "--ws-port", type=_whole(0), default=0, help="WebSocket port (default 0: any free port)"
    )
    parser.add_argument(
        "--ws-ping",
        type=positive_seconds,
        default=10.0,
        metavar="SECONDS",
        help="seconds between the feed's PING messages; a session that does not echo one by "
        "the next is closed (default 10)",
    )
    parser.add_argument(
        "--no-market",
        action="store_true",
        help="no random-walk market: nothing fills on its own",
    )


def run_sim_server(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    """Run ``sim-server`` with parsed ``args`` until interrupted; return the exit status."""
    if not args.public and not is_loopback(args.host):
        print(
            f"order-engine sim-server: refusing to listen on {args.host!r}, which is not a "
            "loopback address: the simulator hands out tokens to anyone. "
            "Pass --public to do it anyway.",
            file=stderr,
        )
        return 2
    server = SimServer(
        host=args.host,
        port=args.port,
        seed=args.seed,
        rate=args.rate,
        sessions=args.sessions,
        page_size=args.page_size,
        step_ms=args.step_ms,
        venue_ms=args.venue_ms,
        market=not args.no_market,
        ws_port=args.ws_port,
        ws_ping_interval=args.ws_ping,
    )
    try:
        server.start()
    except OSError as exc:
        print(
            f"order-engine sim-server: cannot listen on {args.host}:{args.port}: {exc}", file=stderr
        )
        return 2
    stop = threading.Event()
    try:
        with stop_on_sigterm(stop):
            stdout.write(server.base_url + "\n" + server.ws_url + "\n")
            stdout.flush()
            rate = "unlimited" if args.rate is None else f"{args.rate}/s per api-id"
            print(
                f"Kiwoom simulator: seed {args.seed}, rate {rate}, "
                f"sessions {'on' if args.sessions else 'off'}, "
                f"market {'off' if args.no_market else 'on'}. Ctrl-C to stop.",
                file=stderr,
            )
            stderr.flush()
            while not stop.wait(0.2):
                pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


@contextmanager
def stop_on_sigterm(stop: threading.Event) -> Iterator[threading.Event]:
    """Set ``stop`` on SIGTERM while in the block (main thread only; elsewhere: no handler)."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous)
