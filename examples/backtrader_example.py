"""A backtrader strategy trading through the order engine and the simulated exchange.

Run it with ``python examples/backtrader_example.py [--seed N]`` (``pip install -e
'.[backtrader]'`` first). The market is a seeded random walk of one-second bars of Samsung
Electronics (005930), fed to backtrader from memory. The strategy joins the bid with limit buys
(filled a little at a time: each bar trades at most 200 shares), rests passive buys and cancels
them a few bars later, cuts one order by part of its shares, takes profit with limit sells, and
asks for cancels the engine must refuse (an order already filled, a second cancel while a cancel
of everything is pending). It prints what backtrader saw and the engine's report, and exits 0
only when the engine's view of every order matched the exchange.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import Any

import backtrader as bt

from adapters.sim import Latency, random_walk, tick_size
from adapters.sim.backtrader_broker import BarFeed, EngineBroker

STEPS = 600  # ten minutes of one-second bars
CASH = 200_000_000  # KRW


class JoinTheBid(bt.Strategy):  # type: ignore[misc]
    """Buys at the last price, rests passive bids, sells above the average cost."""

    def __init__(self) -> None:
        self.partials = 0
        self.passive: list[tuple[int, Any]] = []  # (bar to cancel at, order)
        self.filled_buys: list[Any] = []
        self.refused: list[str] = []
        self.tried_filled = False
        self.cut: Any = None
        self.selling: Any = None

    def notify_order(self, order: Any) -> None:
        if order.status == bt.Order.Partial:
            self.partials += 1
        elif order.status == bt.Order.Completed and order.isbuy():
            self.filled_buys.append(order)

    def next(self) -> None:
        n = len(self.data)
        close = int(self.data.close[0])
        tick = tick_size(close)
        position = self.getposition()
        buying = n < STEPS - 60 and position.size < 1_200
        if n % 20 == 1 and buying:
            self.buy(size=300, price=close, exectype=bt.Order.Limit)
        if n % 20 == 11 and buying:
            order = self.buy(size=100, price=close - 2 * tick, exectype=bt.Order.Limit)
            self.passive.append((n + 5, order))
        if n == 100:
            self.cut = self.buy(size=200, price=close - 3 * tick, exectype=bt.Order.Limit)
        if n == 105 and self.cut is not None:
            self.broker.cancel_shares(self.cut, 120)  # keep 80 shares working
        while self.passive and self.passive[0][0] <= n:
            _, order = self.passive.pop(0)
            if order.alive():
                self.cancel(order)  # backtrader's way; the outcome is in order.info
                # the broker's own call returns the outcome: refused while the first is pending
                again = self.broker.cancel(order)
                if again is not None and again.refused:
                    self.refused.append(again.decision.describe())
        if self.filled_buys and not self.tried_filled:
            self.tried_filled = True
            done = self.filled_buys[0]
            self.cancel(done)  # filled: the engine refuses, nothing is sent
            self.refused.append(f"order {done.ref}: {done.info.cancel_refusal_text}")
        if position.size >= 500 and (self.selling is None or not self.selling.alive()):
            cost = int(position.price)
            price = max(cost - cost % tick + tick, close)  # above the average cost
            self.selling = self.sell(size=position.size // 2, price=price, exectype=bt.Order.Limit)


def main(argv: list[str] | None = None) -> int:
    """Run the example; return 0 when the engine matched the exchange."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7, help="seed of the market and the exchange")
    args = parser.parse_args(argv)

    bars = [step[0] for step in random_walk(["005930"], steps=STEPS, seed=args.seed, step_ms=1_000)]
    cerebro = bt.Cerebro(stdstats=False)
    data = BarFeed(bars)
    cerebro.adddata(data)
    broker = EngineBroker(cash=CASH, seed=args.seed, latency=Latency.uniform("20-400"))
    cerebro.setbroker(broker)
    cerebro.addstrategy(JoinTheBid)
    (strategy,) = cerebro.run()
    report = broker.finish()

    ends = Counter(order.getstatusname() for order in broker.orders)
    disagree = []
    for order in broker.orders:
        mine = broker.engine_order(order)
        if mine is None:
            continue  # refused before it was sent
        sign = 1 if order.isbuy() else -1
        status = {"FILLED": "Completed", "CANCELLED": "Canceled", "REJECTED": "Rejected"}
        if (
            status.get(mine.state.name) != order.getstatusname()
            or order.executed.size != sign * mine.filled_qty
        ):
            disagree.append(f"{order.ref}: {order.getstatusname()} vs {mine!r}")

    position = broker.getposition(data)
    print(f"bars: {len(bars)}, orders: {len(broker.orders)}, final statuses: {dict(ends)}")
    print(f"partial-fill notifications: {strategy.partials}")
    print(f"cancels: {report.cancels}")
    if strategy.cut is not None:
        cut = broker.engine_order(strategy.cut)
        print(f"part-cancelled order: {cut!r}")
    if strategy.refused:
        print(f"refused cancels ({len(strategy.refused)}), e.g.: {strategy.refused[0]}")
        print(f"  and: {strategy.refused[-1]}")
    print(f"races: {report.races}")
    print(
        f"position: {position.size} shares at {position.price:,.0f}; "
        f"cash {broker.getcash():,.0f} KRW; value {broker.getvalue():,.0f} KRW"
    )
    for line in disagree:
        print(f"backtrader and the engine disagree: {line}")
    for mismatch in report.mismatches:
        print(f"mismatch: {mismatch}")
    print(f"engine matches the exchange: {report.ok}")
    return 0 if report.ok and not disagree else 1


if __name__ == "__main__":
    sys.exit(main())
