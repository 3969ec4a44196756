"""Judge layer of the gradient-flow report: the verdict on claim 4 and every sentence that states a finding.

Pure functions of the computed ``data`` (the report's JSON ``data``, or a hand-made dict with the
keys a function reads).  The verdict rule (docs/claims.md, claim 4):

* *faster*: the lower quartiles over instances of ``T_L/T_H`` at ``1e-6`` and of ``λ_H/λ_L``
  (H-mean) both exceed 1 (``None``: neither statistic has an instance; ``False`` as soon as one
  that exists does not exceed 1);
* *survives finite samples*: full-batch autograd GD at a common step reaches ``FS_EPS`` first with
  ``H`` for at least half of the sample sizes and for the largest (``None``: no sample size run).

Both → ``confirmed with qualifications`` (the qualifications: a gain in time, i.e. at a common
step, not at curvature-matched steps); exactly one → ``inconclusive``; neither → ``refuted``; a
condition that cannot be judged (``None``) → ``inconclusive``.

The labels are the judge's too, each from numbers the compute layer records for it: where a
population run ends (:func:`run_end`: ``final_distance``, ``late_rate``, ``status``,
``final_field_norm``) and whether a finite-sample run stalled (:func:`is_stalled`:
``final_distance``, ``final_step_norm``); :func:`labels` gives them for a whole report, and
:func:`labelled` puts them into the report's ``data`` (the JSON keeps ``end``,
``stalled_at_stationary_point``, ``reach`` and ``prediction_relative_error``).
"""
from __future__ import annotations

import numpy as np

from numerics.flows import FLOWS, RECENTER_DISTANCE
from verify.report import fmt

from .compute import FS_EPS, stats

# ----------------------------------------------------------------------------- labels: where a run ends
TEACHER = "teacher"
CRITICAL_POINT = "another critical point"
STILL_ON_THE_WAY = ("approaching the teacher (1e-6 not reached in time)", "no convergence in the time allowed",
                    "integration stalled (evaluation cap)")  # ends of runs that were cut by the time or the cap
# A run "reaches the teacher" at the smallest distance its times are measured to (compute.EPSILONS[-1]): a run
# labelled so has a T(1e-6), the time the acceleration T_L/T_H is taken at.
TEACHER_DISTANCE = 1e-6
# Short of that, a run still counts as approaching the teacher (cut by t_max, not stopped) below the distance at
# which the integrator re-centres on the matched teacher (numerics.flows.RECENTER_DISTANCE = 1e-2: the
# permutation is settled and the error control is relative to the distance there) ...
APPROACH_DISTANCE = RECENTER_DISTANCE
# ... provided its fitted late rate is positive: the distance was still falling when the time ran out.
APPROACH_RATE = 0.0
# Elsewhere (not near the teacher, or no longer getting closer), a flow field |F(W_end)| below 1e-4 |W*| at the
# last point is a run that came to rest at another critical point: four decades below the field at a start
# (O(|W*|) at relative distance O(1)); a run that keeps more is still moving ("no convergence in the time allowed").
CRITICAL_FIELD = 1e-4
# numerics.flows.integrate's status starts so when its cap on right-hand-side evaluations (max_nfev) stopped the
# solver: the run was cut by the cap, whatever its distance, unless it had reached the teacher.
CAP_STATUS = "evaluation cap"

# ----------------------------------------------------------------------------- labels: stalled training
# A finite-sample run stalled when its last step moved the weights by less than 1e-12 |W*| while it was still more
# than 1e-8 |W*| from the teacher: the autograd gradient vanished to rounding (four decades above float64
# resolution, 1e-16 |W*|, and below a live step there, about distance/κ ≥ 1e-8/500 for the condition numbers κ of
# these teachers) at a point that is not the teacher.  At or below 1e-8 (the bottom of the fit window
# numerics.flows.FIT_WINDOW) a run that stops moving has converged.
STALL_DISTANCE = 1e-8
STALL_STEP = 1e-12

SLOPE_TOLERANCE = 0.25  # |slope + 1/2| within which a deviation is said to scale like n^(-1/2)
PROPORTIONAL_SPREAD = 1.5  # max/min of floor/(h/2pi) below which the Euler floors are said to be ∝ h
EULER_FLOOR = 1e-6  # an Euler floor above this relative distance is a stall


def run_end(run: dict) -> str:
    """Where a population run ends, from its numbers (``final_distance``, ``status``, ``late_rate`` and
    ``final_field_norm``, as :func:`.compute.measure_flow` records them): ``teacher``
    (:data:`TEACHER_DISTANCE`), cut by the evaluation cap (:data:`CAP_STATUS`), approaching the teacher
    (:data:`APPROACH_DISTANCE`, :data:`APPROACH_RATE`), another critical point (:data:`CRITICAL_FIELD`), or no
    convergence in the time allowed."""
    dist, rate = run["final_distance"], run["late_rate"]["rate"]
    if dist <= TEACHER_DISTANCE:
        return TEACHER
    if run["status"].startswith(CAP_STATUS):
        return STILL_ON_THE_WAY[2]
    if dist < APPROACH_DISTANCE and rate is not None and rate > APPROACH_RATE:
        return STILL_ON_THE_WAY[0]
    return CRITICAL_POINT if run["final_field_norm"] < CRITICAL_FIELD else STILL_ON_THE_WAY[1]


def is_stalled(run: dict) -> bool:
    """Whether a finite-sample run stalled at a stationary point that is not the teacher: farther than
    :data:`STALL_DISTANCE` from it (``final_distance``) with a last step below :data:`STALL_STEP`
    (``final_step_norm``, relative to ``|W*|``)."""
    return bool(run["final_distance"] > STALL_DISTANCE and run["final_step_norm"] < STALL_STEP)


def reach_counts(runs: list, ends: list) -> dict:
    """Per flow and start: runs, runs that reach the teacher, and the count of every end (``ends[i]``: where
    ``runs[i]`` ends)."""
    reach = {}
    for fl in FLOWS:
        for start in ("near", "far"):
            sel = [e for r, e in zip(runs, ends) if r["flow"] == fl and r["start"] == start]
            reach[f"{fl}/{start}"] = {"runs": len(sel), "teacher": sum(e == TEACHER for e in sel),
                                      "ends": {e: sum(x == e for x in sel) for e in sorted(set(sel))}}
    return reach


def prediction_errors(runs: list, ends: list) -> dict:
    """Relative error of the predicted rate, per flow, over the runs that reach the teacher (window fits)."""
    out = {}
    for fl in FLOWS:
        errs = []
        for r, e in zip(runs, ends):
            if r["flow"] == fl and e == TEACHER and r["late_rate"]["rate"] and r["late_rate"]["window"] == "window":
                p = r.get("predicted_rate_along_run", r["predicted_rate"])
                errs.append(abs(r["late_rate"]["rate"] - p) / p)
        out[fl] = stats(errs)
    return out


def labels(data: dict) -> dict:
    """Every label of a report, from its numbers: ``ends`` (one per ``data["runs"]``), ``kink_end`` (the sliding
    run at the kink), ``stalled_flags`` (one dict per finite-sample size, run key → stalled), and what counts and
    filters by them: ``reach`` and ``prediction_relative_error``."""
    ends = [run_end(r) for r in data["runs"]]
    return {"ends": ends, "kink_end": run_end(data["kink"]["sliding"]),
            "stalled_flags": [{key: is_stalled(r) for key, r in row["runs"].items()}
                              for row in data["finite_samples"]["samples"]],
            "reach": reach_counts(data["runs"], ends),
            "prediction_relative_error": prediction_errors(data["runs"], ends)}


def _with_end(run: dict, end: str) -> dict:
    """``run`` with ``end`` after its ``flow`` (where the JSON has always kept it)."""
    out = {}
    for key, value in run.items():
        out[key] = value
        if key == "flow":
            out["end"] = end
    out.setdefault("end", end)
    return out


def labelled(numbers: dict) -> dict:
    """The report's ``data``: the compute layer's ``numbers`` with :func:`labels` put in where the JSON keeps them
    (every run's ``end``, the kink's sliding run's ``end``, each finite-sample run's ``stalled_at_stationary_point``,
    and ``reach`` and ``prediction_relative_error`` after ``acceleration_stats``).  ``numbers`` is not changed."""
    lab = labels(numbers)
    fs = numbers["finite_samples"]
    samples = [{**row, "runs": {key: {**r, "stalled_at_stationary_point": flags[key]}
                                for key, r in row["runs"].items()}}
               for row, flags in zip(fs["samples"], lab["stalled_flags"])]
    out = {}
    for key, value in numbers.items():
        if key == "runs":
            value = [_with_end(r, e) for r, e in zip(value, lab["ends"])]
        elif key == "kink":
            value = {**value, "sliding": _with_end(value["sliding"], lab["kink_end"])}
        elif key == "finite_samples":
            value = {**value, "samples": samples}
        out[key] = value
        if key == "acceleration_stats":
            out["reach"] = lab["reach"]
            out["prediction_relative_error"] = lab["prediction_relative_error"]
    return out


# ----------------------------------------------------------------------------- the verdict
def faster(acc_stats: dict) -> bool | None:
    """Both lower quartiles (``T_L/T_H`` at 1e-6, ``λ_H/λ_L``; H-mean) above 1."""
    found = [acc_stats.get(k, {}) for k in ("H-mean/time_ratio_1e-06", "H-mean/rate_ratio")]
    found = [s for s in found if s.get("n")]
    if any(s["q25"] <= 1 for s in found):
        return False
    return True if len(found) == 2 else None


def survives(fs_acc: list) -> bool | None:
    """H first (full-batch GD, common step) for at least half of the sample sizes and for the largest."""
    first = [a["GD_common"]["H_first"] for a in fs_acc]
    if not first:
        return None
    return sum(bool(x) for x in first) >= max(1, (len(first) + 1) // 2) and bool(first[-1])


def verdict(is_faster: bool | None, does_survive: bool | None) -> str:
    """Both → confirmed with qualifications; one → inconclusive; neither → refuted; unknown → inconclusive."""
    if is_faster is None or does_survive is None:
        return "inconclusive"
    if is_faster and does_survive:
        return "confirmed with qualifications"
    if is_faster or does_survive:
        return "inconclusive"
    return "refuted"


# ----------------------------------------------------------------------------- shared facts
def _reach(data: dict) -> dict:
    return reach_counts(data["runs"], [run_end(r) for r in data["runs"]])


def _kappa_medians(data: dict) -> tuple:
    """Medians over all teachers of the predicted common-step and curvature-matched per-iteration gains
    (and the statistics of the latter)."""
    kappa = data["condition_numbers"]
    return (stats([k["common_step_gain"] for k in kappa]).get("median"),
            stats([k["matched_step_gain"] for k in kappa]).get("median"),
            stats([k["matched_step_gain"] for k in kappa]))


def _matched_gain(fs_acc: list) -> float | None:
    """Median over the sample sizes of the measured curvature-matched acceleration (full-batch GD)."""
    values = [a["GD_matched"]["ratio"] for a in fs_acc if a["GD_matched"]["ratio"]]
    return float(np.median(values)) if values else None


def stalled_runs(data: dict) -> list:
    """``(n, run key, final distance)`` of every finite-sample run that stalled at a stationary point
    (a ``*/matched/H`` run is left out where it is the ``*/common/H`` run: the same step size)."""
    fs = data["finite_samples"]
    same_h = fs["step_sizes"]["matched"]["H"] == fs["step_sizes"]["common"]["H"]
    out = []
    for row in fs["samples"]:
        for key, run_ in row["runs"].items():
            if is_stalled(run_) and not (same_h and key.endswith("matched/H")):
                out.append((row["n"], key, run_["final_distance"]))
    return out


def _single_node_fraction(x: float) -> str:
    return {0.5: "½", 1.0: "1", 2.0: "2"}.get(x, f"{x:g}")


def single_node_condition_ratio(single: dict) -> float:
    """``κ_L/κ_H`` of one node from the limiting eigenvalues of the theory (1 when both spectra are points)."""
    kL = max(single["L"]["limit_eigenvalues"]) / min(single["L"]["limit_eigenvalues"])
    kH = max(single["H"]["limit_eigenvalues"]) / min(single["H"]["limit_eigenvalues"])
    return kL / kH


# ----------------------------------------------------------------------------- sentences
def single_node_prediction(single: dict) -> str:
    """The predicted single-node acceleration (SymPy)."""
    rm, rt = single["rate_ratio_H_mean_over_L"], single["rate_ratio_H_true_over_L"]
    which = f"{rm:g} (H-mean and H-true)" if rm == rt else f"{rm:g} (H-mean), {rt:g} (H-true)"
    return (f"**Predicted single-node acceleration: rate ratio {which}, hence `T_L/T_H → {rm:g}` as ε → 0.**")


def kink_sentences(kink: dict, prof: dict, rtol: float) -> str:
    """What explicit Euler, plain RK45 and the sliding flow do at the kink of the true gradient of H."""
    parts = []
    eu = kink["euler"]
    ratios = [e["floor_over_h_over_2pi"] for e in eu]
    if eu and all(e["floor_distance"] > EULER_FLOOR for e in eu):
        head = "Explicit Euler with step `h` overshoots the ray every step and chatters: the distance stalls at a floor"
        if len(eu) >= 2 and max(ratios) / min(ratios) < PROPORTIONAL_SPREAD:
            about = all(0.25 <= r <= 1.0 for r in ratios)
            parts.append(head + " proportional to `h`" + (
                " (about `h|w*|/4π`: the orthogonal jump per step is `h|w*|/2π`, and the iterate alternates around "
                "the ray)" if about else f" (floor/(h/2π) from {min(ratios):.3g} to {max(ratios):.3g})") + ".")
        elif len(eu) >= 2:
            parts.append(head + f" that is not proportional to `h` (floor/(h/2π) from {min(ratios):.3g} to "
                         f"{max(ratios):.3g}).")
        else:
            parts.append(head + f" (floor/(h/2π) = {ratios[0]:.3g}).")
    elif eu:
        below = ", ".join(f"{e['h']}" for e in eu if e["floor_distance"] <= EULER_FLOOR)
        parts.append(f"Explicit Euler does not stall above distance {EULER_FLOOR:g} for h ∈ {{{below}}}.")
    rk = kink["plain_rk45"]
    if rk["completed"]:
        parts.append(f"A plain adaptive RK45 (rtol {rtol:g}) completes the run to t = {rk['t_reached']:.3g} with "
                     f"{rk['nfev']} evaluations.")
    else:
        parts.append(f"A plain adaptive RK45 (rtol {rtol:g}) keeps rejecting steps at the kink "
                     f"(capped at {prof['rk_cap']} evaluations).")
    sl = kink["sliding"]
    end = run_end(sl)
    if end == TEACHER:
        parts.append("The sliding treatment (section 3) has neither problem.")
    else:
        parts.append(f"The sliding treatment (section 3) ends at distance {sl['final_distance']:.2g} ({end}).")
    return " ".join(parts)


def step_size_note(step_sizes: dict) -> str:
    """Whether the common step ``1/ρ_H`` is also stable for ``L`` (``η < 2/ρ_L``, ``1/ρ_L`` the matched ``L`` step)."""
    if step_sizes["common"]["L"] < 2 * step_sizes["matched"]["L"]:
        return "also stable for `L`"
    return "too large for `L`: η ≥ 2/ρ_L"


def stall_paragraph(stalled: list) -> str | None:
    """Section 6's account of the stalls (``None`` when no run stalled)."""
    if not stalled:
        return None
    others = [k for _, k, _ in stalled if k.endswith("/L") or k.startswith("SGD/")]
    tail = ("full-batch GD on `H` stops there, while `L` (continuous per-sample loss) and SGD (a different "
            "minibatch each step) go on to the teacher." if not others else
            f"full-batch GD on `H` stops there; here {len(set(others))} run(s) of `L` or SGD stalled too.")
    return ("**Stalls.** " + "; ".join(f"n = {n}, {key}: stationary at distance {dist:.2g}"
                                       for n, key, dist in dict.fromkeys(stalled)) + ". "
            "The per-sample Sobolev loss `ℓ_J` jumps when a row's hyperplane crosses a sample (the indicator "
            "flips); autograd does not see the jump, and a sample caught between `w_j` and `w*_j` contributes "
            "an O(|w_j|/n) term to the gradient that can balance the O(λ distance) pull towards the teacher. "
            "The autograd gradient then vanishes exactly at distance O(1/n) from the teacher: " + tail)


def summary_sentence(data: dict) -> str:
    """The verdict's one-sentence summary of the numbers."""
    s, reach, fs_acc = data["acceleration_stats"], _reach(data), data["finite_sample_acceleration"]
    tm, rr, tt = s["H-mean/time_ratio_1e-06"], s["H-mean/rate_ratio"], s["H-true/time_ratio_1e-06"]
    pop_acc = data["population_gd_acceleration"]
    kc, km, kms = _kappa_medians(data)
    fr = lambda fl: f"{reach[f'{fl}/far']['teacher']}/{reach[f'{fl}/far']['runs']}"  # noqa: E731
    return (
        f"population flow, time to 1e-6: T_L/T_H median {fmt(tm.get('median'), '.2f')} "
        f"[IQR {fmt(tm.get('q25'), '.2f')}–{fmt(tm.get('q75'), '.2f')}] (H-mean), {fmt(tt.get('median'), '.2f')} (H-true); "
        f"late rates λ_H/λ_L median {fmt(rr.get('median'), '.2f')} [{fmt(rr.get('q25'), '.2f')}–{fmt(rr.get('q75'), '.2f')}] "
        f"(single node: exactly {data['single_node_theory']['rate_ratio_H_mean_over_L']:g}, derived); reach the teacher "
        f"from far starts: L {fr('L')}, H-mean {fr('H-mean')}, H-true {fr('H-true')}; autograd full-batch GD on n = "
        f"{', '.join(str(r['n']) for r in data['finite_samples']['samples'])} samples, "
        f"iterations to {FS_EPS:g} L/H: {', '.join(fmt(a['GD_common']['ratio'], '.2f') for a in fs_acc)} at a common step, "
        f"{', '.join(fmt(a['GD_matched']['ratio'], '.2f') for a in fs_acc)} with curvature-matched steps "
        f"(population GD: {fmt(pop_acc['common']['ratio'], '.2f')} and {fmt(pop_acc['matched']['ratio'], '.2f')}); "
        f"predicted per-iteration gain over all teachers: median {fmt(kc, '.2f')} at a common step, "
        f"{fmt(km, '.2f')} [{fmt(kms.get('min'), '.2f')}–{fmt(kms.get('max'), '.2f')}] with "
        "curvature-matched steps")


def true_flow_sentence(data: dict) -> str:
    """Whether the true-gradient flow of H accelerates more than the mean-field one, and why."""
    s = data["acceleration_stats"]
    tm, tt = s["H-mean/time_ratio_1e-06"], s["H-true/time_ratio_1e-06"]
    if not (tm.get("n") and tt.get("n")):
        return ""
    if tt["median"] > tm["median"]:
        locks = any(e["event"] == "lock" for r in data["runs"] if r["flow"] == "H-true" for e in r["locks"])
        return ("; the true-gradient flow of the population `H` accelerates more"
                + (", because its rows reach the teacher rays in finite time" if locks else
                   f" (median T_L/T_H {tt['median']:.2f} against {tm['median']:.2f})"))
    return (f"; the true-gradient flow of the population `H` does not accelerate more here (median T_L/T_H "
            f"{tt['median']:.2f} against {tm['median']:.2f})")


def time_sentence(data: dict, is_faster: bool | None) -> str:
    """Whether "faster" holds in time, and the single-node rate change."""
    single = data["single_node_theory"]
    rL, rH = single["L"]["rate"], single["H"]["rate"]
    ratio = single["rate_ratio_H_mean_over_L"]
    change = (f"doubles exactly ({_single_node_fraction(rL)} → {_single_node_fraction(rH)})" if ratio == 2 else
              f"changes by the factor {ratio:g} ({rL:g} → {rH:g})")
    kc = _kappa_medians(data)[0]
    if is_faster:
        why = ", because `H` has larger curvature" if kc is not None and kc > 1 else ""
        return f"\"Faster\" holds in *time* (equivalently, at a common step size){why}: for one node the rate {change}."
    s = data["acceleration_stats"]
    q = [fmt(s[k].get("q25"), ".2f") for k in ("H-mean/time_ratio_1e-06", "H-mean/rate_ratio")]
    if is_faster is None:
        return f"\"Faster\" in *time* cannot be judged here (no instance with both ratios); for one node the rate {change}."
    return (f"\"Faster\" does not hold in *time* here: the lower quartiles of T_L/T_H at 1e-6 and of λ_H/λ_L are "
            f"{q[0]} and {q[1]} (both must exceed 1); for one node the rate {change}.")


def matched_step_sentence(data: dict) -> str:
    """The per-iteration gain with curvature-matched steps: predicted (single node, all teachers) and measured."""
    kc, km, _ = _kappa_medians(data)
    one = single_node_condition_ratio(data["single_node_theory"])
    one_txt = ("**exactly 1 for a single node** (both spectra are single points)" if one == 1 else
               f"{one:.3g} for a single node")
    widths = [K for K in data["profile_settings"]["widths"] if K >= 2]
    gs = data["predicted_gd_gain_stats"]
    smaller = [K for K in widths if gs[f"K={K}"]["matched"].get("n")
               and gs[f"K={K}"]["matched"]["median"] < gs[f"K={K}"]["common"]["median"]]
    text = ("With a step matched to each loss's own curvature (η = 1/ρ) the asymptotic per-iteration gain is only the "
            f"ratio of condition numbers κ_L/κ_H, which is {one_txt}")
    if widths:
        which = "K ≥ 2" if smaller == widths else f"K ∈ {{{', '.join(map(str, smaller))}}} (not for the other widths)"
        text += (f" and smaller than the common-step gain for {which}" if smaller else
                 " and not smaller than the common-step gain for any K ≥ 2 run")
        text += f" (median {fmt(km, '.2f')} against {fmt(kc, '.2f')}, predicted over all teachers)"
    gain = _matched_gain(data["finite_sample_acceleration"])
    more = gain is not None and km is not None and gain > km
    return (text + f"; the finite-sample runs measure {fmt(gain, '.2f')} (median; iterations to {FS_EPS:g}"
            + (", which includes the non-linear start where `H` gains more" if more else "") + ").")


def far_start_sentence(data: dict) -> str:
    """Far starts: which flows reach the teacher more often, and whether the fractions are cut by the time allowed."""
    reach, prof = _reach(data), data["profile_settings"]
    n_far = reach["L/far"]["runs"]
    if not n_far:
        return ""
    L, Hs = reach["L/far"]["teacher"], [reach["H-mean/far"]["teacher"], reach["H-true/far"]["teacher"]]
    if min(Hs) > L:
        text = "Far starts: more runs reach the teacher within the time allowed under `H` than under `L`"
    elif Hs == [L, L]:
        text = "Far starts: as many runs reach the teacher within the time allowed under `H` as under `L`"
    else:
        text = (f"Far starts: not more runs reach the teacher within the time allowed under `H` than under `L` "
                f"(L {L}, H-mean {Hs[0]}, H-true {Hs[1]} of {n_far})")
    way = [r for r in data["runs"] if r["start"] == "far" and run_end(r) in STILL_ON_THE_WAY]
    if not way:
        return text + "."
    Ks = sorted({r["K"] for r in way})
    by_flow = ", ".join(f"{fl}: {sum(r['flow'] == fl for r in way)}" for fl in FLOWS
                        if any(r["flow"] == fl for r in way))
    slow = [r["predicted_rate"] for r in way if r["flow"] == "L"]
    return (text + f", but {len(way)} of the {3 * n_far} far runs ({by_flow}; K ∈ {{{', '.join(map(str, Ks))}}}) "
            f"{'is still on its' if len(way) == 1 else 'are still on their'} way at t = {prof['t_max']:g}"
            + (f" (slow modes of `L`, λ_min as small as {min(slow):.2g})" if slow else "")
            + ", so the fractions are time-limited, not basins of attraction.")


def finite_sample_sentence(data: dict, stalled: list) -> str:
    """Finite samples: deviation from population GD in n, which n H reaches FS_EPS first, the stalls."""
    sl = data["deviation_slope_in_n"]
    fs_acc = data["finite_sample_acceleration"]
    if sl["L"] is None or sl["H"] is None:
        text = "Finite samples: one sample size, so no slope in n"
    elif all(abs(x + 0.5) <= SLOPE_TOLERANCE for x in (sl["L"], sl["H"])):
        text = (f"Finite samples: autograd training tracks population GD with a deviation ∝ n^(−1/2) (fitted slope "
                f"{fmt(sl['L'], '.2f')} for L, {fmt(sl['H'], '.2f')} for H)")
    else:
        text = (f"Finite samples: the deviation of autograd training from population GD does not scale like "
                f"n^(−1/2) (fitted slope {fmt(sl['L'], '.2f')} for L, {fmt(sl['H'], '.2f')} for H)")
    first = [str(a["n"]) for a in fs_acc if a["GD_common"]["H_first"]]
    not_first = [str(a["n"]) for a in fs_acc if not a["GD_common"]["H_first"]]
    if fs_acc:
        text += (f"; at a common step full-batch GD on `H` reaches {FS_EPS:g} first for "
                 + (f"n ∈ {{{', '.join(first)}}}" if first else "no n")
                 + (f" but not for n ∈ {{{', '.join(not_first)}}}" if first and not_first else "") + ".")
    else:
        text += "."
    gd_h = {(n, k) for n, k, _ in stalled if k.startswith("GD/") and k.endswith("/H")}
    others = {(n, k) for n, k, _ in stalled} - gd_h
    text += (" Full-batch GD on the autograd Sobolev loss can stall at a spurious stationary point O(1/n) from the "
             "teacher (section 6; " + (f"{len(gd_h)} run(s) here" if gd_h else "none in this profile's runs") + ")")
    return text + (", which L training and SGD do not." if not others else
                   f"; {len(others)} run(s) of L training or SGD stalled too.")


def convention(data: dict) -> str:
    """The convention column of the verdict table."""
    s = data["acceleration_stats"]
    _, km, _ = _kappa_medians(data)
    single = data["single_node_theory"]
    return ("mean-field (autograd) gradient flow, K = K*, x ~ N(0, I); faster = time to relative distance "
            f"1e-6 and late exponential rate: T_L/T_H median {fmt(s['H-mean/time_ratio_1e-06'].get('median'), '.2f')}, "
            f"rate ratio median {fmt(s['H-mean/rate_ratio'].get('median'), '.2f')} (exactly "
            f"{single['rate_ratio_H_mean_over_L']:g} for one node), i.e. at a common GD step; with steps "
            f"matched to each loss's curvature (η = 1/ρ) the gain is only κ_L/κ_H (predicted median "
            f"{fmt(km, '.2f')}; exactly {single_node_condition_ratio(single):g} for one node); full-batch autograd GD "
            "on H may stall O(1/n) from the teacher")


def judge(data: dict) -> dict:
    """The verdict, the rule's inputs, every finding sentence of the report, and its labels (:func:`labels`:
    ``ends``, ``kink_end``, ``stalled_flags``, ``reach``, ``prediction_relative_error``), all from the numbers."""
    is_faster = faster(data["acceleration_stats"])
    does_survive = survives(data["finite_sample_acceleration"])
    stalled = stalled_runs(data)
    prof = data["profile_settings"]
    conditions = ("Conditions and conventions: the acceleration is measured on the **mean-field** flow (what autograd "
                  "follows, the paper's convention)" + true_flow_sentence(data) + ". "
                  + " ".join(x for x in (time_sentence(data, is_faster), matched_step_sentence(data),
                                         far_start_sentence(data), finite_sample_sentence(data, stalled)) if x))
    return {
        "verdict": verdict(is_faster, does_survive),
        "faster": is_faster,
        "survives_finite_samples": does_survive,
        "summary": summary_sentence(data),
        "conditions": conditions,
        "convention": convention(data),
        "single_node": single_node_prediction(data["single_node_theory"]),
        "kink": kink_sentences(data["kink"], prof, data["constants"]["rtol"]),
        "step_size_note": step_size_note(data["finite_samples"]["step_sizes"]),
        "stalls": stall_paragraph(stalled),
        "stalled": stalled,
        **labels(data),
    }
