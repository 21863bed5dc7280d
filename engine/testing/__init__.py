"""Public test kit: Hypothesis strategies for users' own tests (imported only on request).

``from engine.testing import strategies as es`` needs the ``hypothesis`` package (the
``[testing]`` extra: ``pip install 'kiwoom-order-engine[testing]'``); the engine itself never
imports this package.
"""

#: What to install when Hypothesis is missing.
EXTRA_HINT = (
    "engine.testing needs the [testing] extra (Hypothesis): "
    "pip install 'kiwoom-order-engine[testing]'"
)

try:
    import hypothesis as _hypothesis
except ImportError as _missing:
    raise ImportError(EXTRA_HINT) from _missing
del _hypothesis
