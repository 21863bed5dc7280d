"""Adapters around the pure engine: command line, Kiwoom REST, simulation."""
