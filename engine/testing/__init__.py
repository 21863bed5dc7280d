"""Public test kit: Hypothesis strategies for users' own tests (imported only on request).

``from engine.testing import strategies as es`` needs the ``hypothesis`` package (the ``test``
extra); the engine itself never imports this package.
"""
