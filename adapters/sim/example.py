"""The built-in example strategy of ``order-engine simulate``.

It places limit orders a few ticks around the last price (now and then a market, IOC or FOK
order, or one priced outside the daily band that the venue rejects), and after a few steps acts
on each: a cancel of all that is open (``"0"``), a partial cancel, a modify to the last price, or
a cancel the engine must refuse (invalid quantity, more than is cancellable, a second cancel while
a cancel-all is pending, an unknown number, an order already finished). Its choices come from its
own ``random.Random(seed)``; it sees only what the engine knows.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence

from adapters.sim._rand import draw_int
from adapters.sim.harness import Harness, Strategy
from adapters.sim.market import Bar, round_to_tick, tick_size
from engine import Order, Side
from engine import events as ev

__all__ = ["ExampleStrategy"]

_INVALID = ("-1", "2.5", "x", "", "+5")


class ExampleStrategy(Strategy):
    """Places ``orders`` orders spread evenly over the first 97% of ``steps`` market steps.

    Each step it places what keeps it on schedule, on symbols drawn from the step's bars, and
    acts on the orders that are due.
    """

    event_types = frozenset({ev.OrderAccepted, ev.OrderAmended})  # numbers to act on later

    def __init__(self, *, orders: int, seed: int, steps: int) -> None:
        if type(orders) is not int or orders < 0:
            raise ValueError(f"orders must be a non-negative int, not {orders!r}")
        if type(steps) is not int or steps < 1:
            raise ValueError(f"steps must be a positive int, not {steps!r}")
        if type(seed) is not int:
            raise ValueError(f"seed must be an int, not {seed!r}")
        self.rng = random.Random(seed)
        self.orders = orders
        self.remaining = orders
        self._placing_steps = max(1, steps * 97 // 100)
        self._step = 0
        self._next_place = 1  # the next step that places orders
        self._due: deque[tuple[int, str]] = deque()  # (step, order number) to act on
        self._actions: dict[str, int] = {}

    def on_bars(self, harness: Harness, bars: Sequence[Bar]) -> None:
        self._step = step = harness.steps + 1
        due = self._due
        if due and due[0][0] <= step:
            act = self._act
            while due and due[0][0] <= step:
                act(harness, due.popleft()[1])
        if self.remaining and step >= self._next_place:
            orders = self.orders
            quota = min(orders, -(-orders * step // self._placing_steps))
            rand = self.rng.random
            count = len(bars)
            while orders - self.remaining < quota:
                self._place(harness, bars[int(rand() * count)])
            # The first step whose quota exceeds what is placed: quota(s) > placed when
            # orders * s > placed * placing_steps.
            self._next_place = (orders - self.remaining) * self._placing_steps // orders + 1

    def on_event(self, harness: Harness, event: ev.Event, order: Order | None) -> None:
        # Before this step's on_bars, the step is the last one the harness finished (which it
        # may have passed over as idle).
        if self._step < harness.steps:
            self._step = harness.steps
        self._later(event.ord_no)  # type: ignore[union-attr]

    def done(self, harness: Harness) -> bool:
        # Nothing left to place or act on, and nothing on its way (answers included).
        return not (self.remaining or self._due or harness.exchange.busy)

    def idle_steps(self, harness: Harness) -> int:
        # The next step that acts on an order or places one.
        busy = self._due[0][0] if self._due else 1 << 62
        if self.remaining and self._next_place < busy:
            busy = self._next_place
        return busy - harness.steps - 1

    # -- placing -----------------------------------------------------------------------------
    def _place(self, harness: Harness, bar: Bar) -> None:
        rng = self.rng
        last = bar.close
        tick = tick_size(last)
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        qty = (1 + int(rng.random() * 50)) * 10  # 10 to 500 shares
        away = (int(rng.random() * 7) - 1) * tick  # -1 to 5 ticks on the passive side
        price = last - away if side is Side.BUY else last + away
        kind = rng.random()
        trde_tp = "0"
        if kind < 0.04:
            trde_tp, price = "3", 0
        elif kind < 0.07:
            trde_tp = "10"
        elif kind < 0.09:
            trde_tp = "20"
        elif kind < 0.10:
            price = last * 2  # outside the daily band: the venue rejects it (거부)
        if trde_tp != "3":
            price = round_to_tick(price)  # a valid tick, and at least one tick (never 0 KRW)
        self.remaining -= 1
        harness.place(bar.stk_cd, side, qty, price, trde_tp=trde_tp)

    # -- acting on an order ------------------------------------------------------------------
    def _later(self, ord_no: str) -> None:
        self._due.append((self._step + 1 + int(self.rng.random() * 6), ord_no))  # 1-6 steps

    def _act(self, harness: Harness, ord_no: str) -> None:
        rng = self.rng
        order = harness.orders.get(ord_no)
        if order is None:
            return
        count = self._actions.get(ord_no, 0) + 1
        if order.is_terminal or count > 6:
            self._actions.pop(ord_no, None)
            if rng.random() < 0.1:  # a cancel of a finished order: refused with its reason
                harness.cancel(ord_no, "0")
            return
        self._actions[ord_no] = count
        roll = rng.random()
        cancellable = order.cancellable_qty
        if roll < 0.04:
            harness.cancel(ord_no, rng.choice(_INVALID))  # INVALID_QUANTITY
        elif roll < 0.08:
            harness.cancel(ord_no, cancellable + draw_int(rng, 1, 50))  # EXCEEDS_CANCELLABLE
        elif roll < 0.10:
            harness.cancel(f"{9_000_000 + draw_int(rng, 0, 999_999):07d}", "0")  # UNKNOWN_ORDER
        elif roll < 0.16 and cancellable and not order.pending_cancel_qty:
            last = harness.last_price(order.stk_cd) or order.price
            if last and order.price:
                harness.modify(ord_no, 0, last)  # the new number is scheduled on OrderAmended
        elif roll < 0.45 and cancellable > 1:
            harness.cancel(ord_no, draw_int(rng, 1, cancellable - 1))  # a partial cancel
        else:
            outcome = harness.cancel(ord_no, "0")
            if not outcome.refused and rng.random() < 0.1:
                harness.cancel(ord_no, 1)  # CANCEL_ALL_PENDING
        self._later(ord_no)
