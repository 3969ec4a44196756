"""Reports: ``python -m verify.all`` regenerates every report under ``reports/``.

Each ``verify.<name>`` module writes ``<out>/<name>.md`` and ``<out>/<name>.json`` (and
PNG figures) through :mod:`verify.report`; ``verify.all`` also writes the index
``<out>/README.md`` with the verdict table, one row per claim of the paper.
"""
REPORTS = ("formulas", "witnesses", "conditioning", "gradient_flow", "training", "generalizations", "landscape", "landscape_erf")
