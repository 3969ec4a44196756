"""Which student takes the near-teacher rewrite: the greedy one-to-one matching of students to teachers.

A student within ``SWITCH`` radians of a teacher row is matched to it, closest pair first, and the terms of
the pair are replaced by their cancellation-free rewrites (:func:`theory.pairs.proofs`).  The NumPy reference
(:mod:`numerics.population`) and the other array namespaces (:mod:`numerics.backend`) must match the very
same pairs, so both call :func:`match_candidates`; it works on plain Python numbers and imports nothing.
"""
from __future__ import annotations


def match_candidates(candidates: list, size_gap) -> list:
    """Greedy one-to-one matching, closest angle first, of candidates ``(theta, j, p, ...)``: the list
    of matched ``(j, p)`` in that order.  Ties in the angle (e.g. several students exactly on one
    teacher's ray) go to the smallest relative difference of norms ``size_gap(j, p)`` (the pair whose
    terms then cancel to nothing; matching another would leave large terms to cancel in floating
    point), then to the lower ``j``, then ``p``."""
    used_s, used_t, out = set(), set(), []
    for theta_jp, j, p, *_ in sorted(candidates, key=lambda c: (c[0], size_gap(c[1], c[2]), c[1], c[2])):
        if j not in used_s and p not in used_t:
            used_s.add(j)
            used_t.add(p)
            out.append((j, p))
    return out
