"""One life of the crash harness (tests/test_crash.py): a journalled KiwoomBroker trading
against a SimServer until it is killed, or until its operations are done.

A life opens the broker on the journal (which replays the day and marks every request a dead
process left unanswered as unknown), reconciles until clean (or for a bounded number of tries),
tells the parent it is ready, then places, cancels (partly and fully) and modifies orders at
random (seeded), reconciling now and then. It may be killed at any instant by the parent
(SIGKILL), or it kills itself at its ``kill_at``-th request of ``kill_api`` (``place``,
``cancel`` or ``modify``):

- ``before``: after the broker committed the request's reservation durably, before the
  request leaves (the client's method is wrapped, so nothing of it was sent);
- ``during``: while the request is on the wire (a timer fires while the server holds the
  answer back: the parent injects DELAY faults);
- ``after``: once the answer arrived, before the broker could apply and journal it.

The harness starts this module once as a **zygote** (``python tests/crash_child.py --zygote``):
it imports everything, then forks one child per life on request (a single-threaded process
forks safely, and a life starts in milliseconds instead of paying the imports again). The
protocol is one JSON object per line: the parent writes a life's config on stdin, then
``{"kill": true}`` or ``{"wait": true}``; the zygote answers ``{"pid": N}`` and, once the child
is gone, ``{"exit": CODE}`` (negative: killed by that signal); the child itself writes
``{"ready": true}``, ``{"killed": WHERE, "api": NAME}`` before it kills itself, and at its end
``{"done": COUNTS}`` (or ``{"failed": true}`` after a traceback on stderr).
``python tests/crash_child.py CONFIG.json`` runs one life by hand.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from adapters.broker import CancelStatus
from adapters.kiwoom.broker import KiwoomBroker
from adapters.kiwoom.client import KiwoomClient
from adapters.kiwoom.errors import KiwoomError
from engine import Side

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

APPKEY = "crash-appkey-0b7d"
SECRET = "crash-secretkey-91ce"
SYMBOL = "005930"
TICK = 100  # KRX tick of a 50,000-200,000 KRW stock
CENTER = 71_000  # where the simulator's walk of 005930 starts and reverts to


def make_client(base_url: str) -> KiwoomClient:
    """Return a client for the harness's simulator: no pacing, short timeouts."""
    return KiwoomClient(
        base_url,
        appkey=APPKEY,
        secretkey=SECRET,
        allow_loopback=True,
        rates={"*": None},
        timeout=(1.0, 0.4),
        throttle_pause=0.05,
    )


def _hook(
    client: KiwoomClient,
    name: str,
    counter: list[int],  # this method's calls so far
    config: dict[str, Any],
    rng: random.Random,
    say: Callable[[dict[str, Any]], None],
) -> None:
    """Wrap ``client.<name>`` so that the life's ``kill_at``-th request of ``kill_api`` kills it;
    say where the kill landed first (``{"killed": WHERE}``)."""
    real: Callable[..., Any] = getattr(client, name)
    how = str(config["kill_how"])
    kill_at = int(config["kill_at"]) if config["kill_api"] == name else -1
    on_wire = threading.Event()

    def die(where: str) -> None:
        say({"killed": where, "api": name})
        os.kill(os.getpid(), signal.SIGKILL)

    def die_now() -> None:
        die("on the wire" if on_wire.is_set() else "between requests")

    def wrapped(**kwargs: Any) -> Any:
        counter[0] += 1
        if counter[0] != kill_at:
            return real(**kwargs)
        if how == "before":
            die("before the send" if name == "place" else "after the durable commit")
        if how == "during":
            timer = threading.Timer(rng.uniform(0.0, 0.25), die_now)
            timer.daemon = True
            timer.start()
        on_wire.set()
        answer = real(**kwargs)
        on_wire.clear()
        if how == "after":
            die("after the answer, before the journal")
        return answer

    setattr(client, name, wrapped)


def settle(broker: KiwoomBroker, tries: int, pause: float) -> bool:
    """Reconcile until a report is clean with nothing pending, at most ``tries`` times; a read
    that fails (a timeout on a busy machine) counts as a try."""
    for _ in range(tries):
        try:
            report = broker.reconcile()
        except KiwoomError as exc:  # a read timed out (a busy machine): read again
            log.info("reconcile failed (%s); trying again", exc)
            time.sleep(pause)
            continue
        with broker.lock:
            pending = any(
                o.pending_cancel_qty
                or o.cancel_all_pending
                or o.pending_modify_qty
                or o.modify_all_pending
                for o in broker.book.orders.values()
            )
        if report.clean and not pending:
            return True
        time.sleep(pause)
    return False


def _live(broker: KiwoomBroker) -> list[tuple[str, int]]:
    """Return the (number, cancellable shares) of the open orders, under the writer's lock."""
    with broker.lock:
        return [
            (o.ord_no, o.cancellable_qty)
            for o in broker.book.orders.values()
            if not o.is_terminal and o.cancellable_qty > 0
        ]


def _price(rng: random.Random) -> int:
    return CENTER + TICK * rng.randint(-3, 3)


def run_life(
    config: dict[str, Any], say: Callable[[dict[str, Any]], None] = lambda _m: None
) -> dict[str, int]:
    """Run one life as ``config`` says; ``say`` ``{"ready": true}``, then the counts."""
    rng = random.Random(config["seed"])
    counts = {"places": 0, "cancels": 0, "modifies": 0, "refused": 0, "unknown": 0}
    grace = float(config["grace"])
    with make_client(config["base_url"]) as client:
        for name in ("place", "cancel", "modify"):
            _hook(client, name, [0], config, rng, say)
        broker = KiwoomBroker(
            client,
            journal=config["journal"],
            account=config["account"],
            unknown_grace=timedelta(seconds=grace),
        )
        settle(broker, tries=int(config["settle_tries"]), pause=grace)
        say({"ready": True})
        for _ in range(int(config["ops"])):
            roll = rng.random()
            live = _live(broker)
            if roll < 0.35 or not live:
                side = Side.BUY if rng.random() < 0.5 else Side.SELL
                qty = rng.randint(5, 40)
                broker.place(stk_cd=SYMBOL, side=side, qty=qty, price=_price(rng))
                counts["places"] += 1
            elif roll < 0.80:
                ord_no, cancellable = rng.choice(live)
                qty = 0 if rng.random() < 0.4 else rng.randint(1, cancellable)
                outcome = broker.cancel(None, ord_no, qty)
                counts["cancels"] += 1
                counts["refused"] += outcome.status is CancelStatus.REFUSED
                counts["unknown"] += outcome.status is CancelStatus.UNKNOWN
            elif roll < 0.93:
                ord_no, cancellable = rng.choice(live)
                qty = 0 if rng.random() < 0.3 else rng.randint(1, cancellable)
                broker.modify(orig_ord_no=ord_no, stk_cd=SYMBOL, qty=qty, price=_price(rng))
                counts["modifies"] += 1
            else:
                settle(broker, tries=1, pause=0.0)
        settle(broker, tries=int(config["settle_tries"]), pause=grace)
        broker.close()
    say({"done": counts})
    return counts


def _say(message: dict[str, Any]) -> None:
    """Write one line to stdout in one write(2): lines of the zygote and its children never mix."""
    os.write(1, (json.dumps(message) + "\n").encode())


def zygote() -> None:
    """Fork one life per config line read on stdin; report its pid and its exit (see above).

    After each fork the zygote reads one command line: ``{"kill": true}`` kills the child now
    (it is not reaped before, so its pid cannot have been reused), ``{"wait": true}`` lets it
    run; then the child is reaped and its exit reported.
    """
    while line := sys.stdin.readline():
        config = json.loads(line)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:  # the child: one life, then out without the zygote's exit handlers
            code = 0
            try:
                run_life(config, _say)
            except BaseException:
                traceback.print_exc()
                _say({"failed": True})
                code = 1
            finally:
                sys.stderr.flush()
                os._exit(code)
        _say({"pid": pid})
        command = json.loads(sys.stdin.readline() or "{}")
        if command.get("kill"):
            os.kill(pid, signal.SIGKILL)
        _pid, status = os.waitpid(pid, 0)
        _say({"exit": os.waitstatus_to_exitcode(status)})


if __name__ == "__main__":
    if sys.argv[1:] == ["--zygote"]:
        zygote()
    else:
        with open(sys.argv[1], encoding="utf-8") as handle:
            print(json.dumps(run_life(json.load(handle))))
