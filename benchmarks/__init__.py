"""Benchmarks: speed and memory targets measured here and recorded in ``reports/`` (never part of the tests)."""
