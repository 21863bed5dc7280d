"""The ``order-engine`` command line."""
