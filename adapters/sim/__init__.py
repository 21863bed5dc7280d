"""The simulated exchange, its broker port, the harness and the built-in example strategy.

```python
from adapters.sim import Harness, Latency, SimExchange, random_walk
```

See ``docs/simulation.md``.
"""

from adapters.sim.broker import SimBroker
from adapters.sim.example import ExampleStrategy
from adapters.sim.exchange import ORDER_TYPES, SimError, SimExchange, TruthOrder
from adapters.sim.harness import (
    Harness,
    Mismatch,
    Race,
    Report,
    Strategy,
    check_invariants,
    compare,
)
from adapters.sim.latency import Delay, Latency
from adapters.sim.market import START_PRICES, Bar, random_walk, round_to_tick, tick_size
from adapters.sim.session import DEFAULT_START, DEFAULT_SYMBOLS, run_session, sub_seeds

__all__ = [
    "DEFAULT_START",
    "DEFAULT_SYMBOLS",
    "ORDER_TYPES",
    "START_PRICES",
    "Bar",
    "Delay",
    "ExampleStrategy",
    "Harness",
    "Latency",
    "Mismatch",
    "Race",
    "Report",
    "SimBroker",
    "SimError",
    "SimExchange",
    "Strategy",
    "TruthOrder",
    "check_invariants",
    "compare",
    "random_walk",
    "round_to_tick",
    "run_session",
    "sub_seeds",
    "tick_size",
]
