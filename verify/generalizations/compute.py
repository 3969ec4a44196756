"""Compute layer of the generalizations report: plain data only (the JSON ``data``).

For every configuration (:func:`configurations`) of the model family (:mod:`numerics.family`) two
objectives are compared: the slower ``base`` (``L``; for the ``J2`` question ``L + J``) and the Sobolev
``sobolev`` one (``H = L + J``; for ``J2`` ``L + J + lambda_2 J2``), both as the paper uses them, through
their **mean fields** (what autograd training follows):

* **conditioning near the teacher**: the condition numbers of the Jacobian of each mean field
  (:func:`numerics.hessian` with ``field="mean"``, over ``(W, a)`` when the output weights are trained)
  at points near the teacher: one node at angle ``theta`` and norm ratio ``rho``, and several nodes at
  ``W* + t Delta``;
* **gradient-flow rates**: the population flow ``(W, a)' = -F`` of each mean field from the same start
  near the teacher (SciPy's ``solve_ivp``, stopped once ``L`` is down to ``FIT_FLOOR L(0)``), and its local rate ``-1/2 d log L / dt`` (``L`` the value loss, a
  yardstick both flows share; it also measures flows that converge to another point of a manifold of
  minima, as with trained output weights) fitted over the last half of the run, with the rate predicted
  by the smallest real part of the Jacobian's eigenvalues at the end point.
"""
from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

import numerics
from numerics.conditioning import condition_numbers

RTOL, ATOL = 1e-9, 1e-12  # the flows' integration tolerances (SciPy RK45)
FIT_FLOOR = 1e-11  # the rate is fitted where L > FIT_FLOOR * L(0): below, the closed-form L is rounding


def configurations(settings: dict) -> list:
    """``[{"extension", "label", "kw", "objectives": {"base": kw, "sobolev": kw}, "train_output"}]``."""
    out = [dict(extension="output_weights", label="relu, output weights trained", kw={}, train_output=True,
                objectives={"base": ("L", {}), "sobolev": ("H", {})})]
    for beta in settings["betas"]:
        out.append(dict(extension="leaky_relu", label=f"leaky_relu, beta = {beta:g}", kw={"activation": ("leaky_relu", beta)},
                        train_output=False, objectives={"base": ("L", {}), "sobolev": ("H", {})}))
    for p in settings["powers"]:
        out.append(dict(extension="relu_power", label=f"relu_power, p = {p}", kw={"activation": ("relu_power", p)},
                        train_output=False, objectives={"base": ("L", {}), "sobolev": ("H", {})}))
    for kappa in settings["cov_conditions"]:
        out.append(dict(extension="anisotropic_cov", label=f"cov with condition number {kappa:g}",
                        kw={"cov_condition": kappa}, train_output=False,
                        objectives={"base": ("L", {}), "sobolev": ("H", {})}))
    for p in settings["powers"]:
        out.append(dict(extension="second_order", label=f"relu_power, p = {p}: L + J + {settings['lambda2']:g} J2 "
                        "against L + J", kw={"activation": ("relu_power", p)}, train_output=False,
                        objectives={"base": ("H", {"sobolev": (1.0, 0.0)}),
                                    "sobolev": ("H", {"sobolev": (1.0, settings["lambda2"])})}))
    return out + erf_configurations(settings)


def erf_configurations(settings: dict) -> list:
    """The smooth control (:mod:`numerics.erf`): ``H`` against ``L`` at the ReLU covariances' condition numbers,
    and ``L + J + lambda_2 J2`` against ``L + J`` (listed after the ReLU configurations, so the random streams
    of those are unchanged)."""
    out = [dict(extension="erf", label=f"erf, cov with condition number {kappa:g}",
                kw={"activation": "erf", "cov_condition": kappa}, train_output=False,
                objectives={"base": ("L", {}), "sobolev": ("H", {})}) for kappa in settings["cov_conditions"]]
    out.append(dict(extension="erf_second_order", label=f"erf: L + J + {settings['lambda2']:g} J2 against L + J",
                    kw={"activation": "erf"}, train_output=False,
                    objectives={"base": ("H", {"sobolev": (1.0, 0.0)}),
                                "sobolev": ("H", {"sobolev": (1.0, settings["lambda2"])})}))
    return out


def covariance(d: int, kappa: float) -> np.ndarray:
    """A diagonal covariance with eigenvalues spaced geometrically from 1 to ``kappa``."""
    return np.diag(np.geomspace(1.0, kappa, d))


def family_keywords(config: dict, d: int) -> dict:
    """The keywords of :mod:`numerics.family` for ``config`` in dimension ``d`` (without ``a``)."""
    kw = {k: v for k, v in config["kw"].items() if k != "cov_condition"}
    if "cov_condition" in config["kw"]:
        kw["cov"] = covariance(d, config["kw"]["cov_condition"])
    return kw


def teacher(K: int, d: int, rng) -> tuple:
    """Orthonormal teacher rows (a random rotation) and output weights ``a*`` (spread around 1)."""
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return Q[:K], np.linspace(0.7, 1.4, K)


# ----------------------------------------------------------------------------- conditioning
def _objective(config: dict, which: str, d: int) -> tuple:
    part, extra = config["objectives"][which]
    return part, {**family_keywords(config, d), **extra}


def mean_jacobian(config: dict, which: str, W, Ws, a, a_star) -> np.ndarray:
    part, kw = _objective(config, which, W.shape[1])
    return numerics.hessian(W, Ws, part, "mean", a=a, a_star=a_star, train_output=config["train_output"], **kw)


def relevant_eigenvalues(M: np.ndarray, symmetry_modes: int) -> np.ndarray:
    """The eigenvalues of ``M`` without the ``symmetry_modes`` of smallest modulus (trained output weights:
    ``(a_j, w_j) -> (c a_j, w_j / c)`` leaves ``g`` unchanged, so one eigenvalue per unit is zero at a
    minimum and near zero next to it; no flow moves along it)."""
    ev = np.linalg.eigvals(M)
    return np.sort_complex(ev[np.argsort(np.abs(ev))[symmetry_modes:]])


def kappas(M: np.ndarray, symmetry_modes: int = 0) -> dict:
    """Condition numbers of ``M`` (:func:`numerics.conditioning.condition_numbers`) and the smallest real part;
    with ``symmetry_modes``, the real-part ratio and the smallest real part over :func:`relevant_eigenvalues`
    (the other definitions are then those of the whole matrix, singular there)."""
    out = condition_numbers(M)
    re = relevant_eigenvalues(M, symmetry_modes).real
    out["min_real"] = float(re.min())
    out["symmetry_modes"] = symmetry_modes
    if symmetry_modes:
        out["real_part"] = float(re.max() / re.min()) if re.min() > 0 else None
    return out


def single_node_points(settings: dict) -> list:
    """``(theta, rho)`` of the one-node grid near the teacher."""
    return [(t, r) for t in settings["thetas"] for r in settings["rhos"]]


def rotated(w_star: np.ndarray, theta: float, rho: float, other: np.ndarray) -> np.ndarray:
    """``rho |w*|`` at angle ``theta`` from ``w*``, in the plane of ``w*`` and ``other``."""
    u = w_star / np.linalg.norm(w_star)
    v = other - (other @ u) * u
    v /= np.linalg.norm(v)
    return rho * np.linalg.norm(w_star) * (np.cos(theta) * u + np.sin(theta) * v)


def conditioning(config: dict, settings: dict, rng) -> list:
    """Rows ``{"kind", "where", "base", "sobolev"}`` (condition numbers of both mean-field Jacobians)."""
    rows = []
    d1 = 3
    Ws1, a1 = teacher(1, d1, rng)
    other = rng.standard_normal(d1)
    for theta, rho in single_node_points(settings):
        W = rotated(Ws1[0], theta, rho, other)[None]
        rows.append(_kappa_row(config, "one node", {"theta": theta, "rho": rho}, W, Ws1, a1, a1))
    K, d = settings["K"], settings["d"]
    Ws, a_star = teacher(K, d, rng)
    for t in settings["distances"]:
        for i in range(settings["directions"]):
            D = rng.standard_normal((K, d))
            D /= np.linalg.norm(D)
            rows.append(_kappa_row(config, f"{K} nodes", {"t": t, "direction": i}, Ws + t * D, Ws, a_star.copy(), a_star))
    return rows


def _kappa_row(config, kind, where, W, Ws, a, a_star) -> dict:
    row = {"kind": kind, "where": where}
    modes = len(W) if config["train_output"] else 0
    for which in ("base", "sobolev"):
        row[which] = kappas(mean_jacobian(config, which, W, Ws, a, a_star), modes)
    return row


# ----------------------------------------------------------------------------- gradient flows
def flow(config: dict, which: str, W0, Ws, a0, a_star, T: float, points: int) -> dict:
    """The population flow of the mean field of objective ``which`` from ``(W0, a0)``: times, value loss ``L``
    along it, the fitted rate ``-1/2 d log L / dt`` over the last half, and the predicted rate (smallest
    real part of the mean-field Jacobian at the end point)."""
    part, kw = _objective(config, which, W0.shape[1])
    K, d = W0.shape
    train = config["train_output"]
    value_kw = family_keywords(config, d)

    def unpack(y):
        return (y[:K * d].reshape(K, d), y[K * d:]) if train else (y.reshape(K, d), a0)

    def rhs(_, y):
        W, a = unpack(y)
        g = numerics.gradient(W, Ws, part, "mean", a=a, a_star=a_star, train_output=train, **kw)
        return -(np.concatenate([g[0].ravel(), g[1]]) if train else g.ravel())

    y0 = np.concatenate([W0.ravel(), a0]) if train else W0.ravel()
    floor = FIT_FLOOR * _value_loss(unpack(y0), Ws, a_star, value_kw)

    def converged(_, y):  # stop once L is down to the floor: below it the closed-form L is rounding
        return _value_loss(unpack(y), Ws, a_star, value_kw) - floor
    converged.terminal = True
    sol = solve_ivp(rhs, (0.0, T), y0, rtol=RTOL, atol=ATOL, method="RK45", events=converged, dense_output=True)
    # the run sampled at `points` times up to where it stopped (a fast flow stops early: still `points` samples)
    ts = np.linspace(0.0, sol.t[-1], points)
    ys = sol.sol(ts)
    losses = np.array([_value_loss(unpack(y), Ws, a_star, value_kw) for y in ys.T])
    measured, window = fitted_rate(ts, losses)
    W_end, a_end = unpack(ys[:, -1])
    end = kappas(mean_jacobian(config, which, W_end, Ws, a_end, a_star), K if train else 0)
    return {"t": ts.tolist(), "L": losses.tolist(), "status": int(sol.status), "fit_window": window,
            "measured_rate": measured, "predicted_rate": end["min_real"], "end_kappa": end,
            "L_end": float(losses[-1])}


def fitted_rate(t: np.ndarray, losses: np.ndarray) -> tuple:
    """``(-1/2 slope of log L, [t_from, t_to])`` by least squares over the second half of the times where
    ``L > FIT_FLOOR L(0)`` (``(None, None)`` with fewer than 8 such points)."""
    valid = np.flatnonzero(losses > FIT_FLOOR * losses[0])
    if len(valid) < 8:
        return None, None
    last = valid[-1] if valid[-1] == len(valid) - 1 else valid[np.flatnonzero(np.diff(valid) > 1)[0]]
    idx = np.arange(last // 2, last + 1)
    slope = float(np.polyfit(t[idx], np.log(losses[idx]), 1)[0])
    return -0.5 * slope, [float(t[idx[0]]), float(t[idx[-1]])]


def _value_loss(state, Ws, a_star, kw) -> float:
    W, a = state
    return numerics.loss(W, Ws, "L", a=a, a_star=a_star, **kw)


def flows(config: dict, settings: dict, rng) -> list:
    """Both flows from ``settings["flow_starts"]`` common starts ``W* + t Delta`` (and ``a* + t delta``)."""
    K, d = settings["K"], settings["d"]
    Ws, a_star = teacher(K, d, rng)
    out = []
    for i in range(settings["flow_starts"]):
        D = rng.standard_normal((K, d))
        D /= np.linalg.norm(D)
        da = rng.standard_normal(K)
        da /= np.linalg.norm(da)
        t = settings["flow_distance"]
        W0, a0 = Ws + t * D, a_star + t * da if config["train_output"] else a_star.copy()
        row = {"start": i}
        for which in ("base", "sobolev"):
            row[which] = flow(config, which, W0, Ws, a0, a_star, settings["flow_time"], settings["flow_points"])
        out.append(row)
    return out


# ----------------------------------------------------------------------------- symbolic single-node spectra
def symbolic_member(config: dict):
    """``(member name of theory.activations.MEMBERS, substitutions)`` where the one-node spectra close in the
    e-basis (identity covariance; the output weights fixed), else ``None``."""
    if config["train_output"] or config["kw"].get("cov_condition", 1.0) != 1.0:
        return None
    act = config["kw"].get("activation", "relu")
    if act == "erf":  # its one-node spectra are closed at the teacher only (single_node_control)
        return None
    if act == "relu":
        return "relu", {}
    from theory.activations import beta

    if act[0] == "leaky_relu":
        return "leaky_relu(beta)", {beta: act[1]}
    return f"relu_power({act[1]})", {}


def _objective_weights(part: str, extra: dict) -> dict:
    lam1, lam2 = extra.get("sobolev", (1.0, 0.0))
    return {"L": 1.0, "J": lam1, "J2": lam2} if part == "H" else {part: 1.0}


def symbolic_single_node(config: dict, settings: dict) -> list | None:
    """Real-part condition numbers and smallest real parts at the one-node points from the symbolic spectra of
    the Jacobians of both mean fields (:func:`theory.activations.single_node_objective_spectrum`; output
    weights ``a = a*`` scale both objectives alike and leave ``kappa`` unchanged), or ``None`` where they do
    not apply (a covariance, trained output weights)."""
    found = symbolic_member(config)
    if found is None:
        return None
    import sympy as sp

    from theory.activations import single_node_objective_spectrum
    from theory.symbols import n_a, n_b, theta

    member, subs = found
    spectra = {}
    for which, (part, extra) in config["objectives"].items():
        eig = single_node_objective_spectrum(member, _objective_weights(part, extra), "mean")
        spectra[which] = sp.lambdify((n_a, n_b, theta), [e.subs(subs) for e in eig], modules="mpmath")
    rows = []
    for t, r in single_node_points(settings):
        row = {"where": {"theta": t, "rho": r}}
        for which, fn in spectra.items():
            re = [float(complex(v).real) for v in fn(r, 1.0, t)]
            row[which] = {"real_part": max(re) / min(re) if min(re) > 0 else None, "min_real": min(re)}
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------- one node at the teacher: ReLU against erf
TEACHER_NORMS = (0.5, 1.0, 2.0)  # |w*| at which erf's one-node spectra are evaluated (ReLU's scale with |w*|)


def _spectrum_row(base: list, sobolev: list) -> dict:
    """The eigenvalues of both Jacobians at the teacher, the rate ratio (smallest over smallest) and the matched-step
    gain ``kappa(base) / kappa(sobolev)`` (largest over smallest: a step matched to each objective's curvature)."""
    base, sobolev = sorted(map(float, base)), sorted(map(float, sobolev))
    return {"base": base, "sobolev": sobolev, "rate_ratio": sobolev[0] / base[0],
            "matched_step_gain": (base[-1] / base[0]) / (sobolev[-1] / sobolev[0])}


def relu_single_node() -> dict:
    """ReLU, one node, ``a = a* = 1``: the limiting eigenvalues of both mean-field Jacobians as the student reaches
    the teacher (:func:`theory.flow.teacher_limit`; they do not depend on ``|w*|``), and whether ``H``'s are twice
    ``L``'s (SymPy).  ``J2`` does not exist (ReLU's second derivative is a delta)."""
    import sympy as sp

    from theory import flow

    L, H = flow.teacher_limit("L")["eigenvalues"], flow.teacher_limit("H")["eigenvalues"]
    return {"H_vs_L": _spectrum_row(L, H), "J2_vs_J": None,
            "exactly_two": all(sp.simplify(h - 2 * l_) == 0 for h, l_ in zip(H, L))}


def erf_single_node(lambda2: float) -> dict:
    """erf, one node, ``a = a* = 1``, ``cov = I``: the Hessian's eigenvalues at ``w = w*`` (along ``w*`` and across,
    :func:`theory.erf.single_node_spectrum`; for erf the Hessian is the mean field's Jacobian) at each ``|w*|`` of
    :data:`TEACHER_NORMS`; ``exactly_two``: whether ``H``'s eigenvalues are twice ``L``'s for every ``|w*|``
    (SymPy), and their ratios' limits as ``|w*| -> 0`` and ``-> oo``."""
    import sympy as sp

    from theory import erf

    L, H = erf.single_node_spectrum("L"), erf.single_node_spectrum("H")
    objective = {"L": L, "L + J": [e.subs({erf.lam1: 1, erf.lam2: 0}) for e in H],
                 "L + J + l2 J2": [e.subs({erf.lam1: 1, erf.lam2: lambda2}) for e in H]}
    ratios = [sp.simplify(h / l_) for h, l_ in zip(objective["L + J"], L)]
    out = {"exactly_two": all(sp.simplify(r - 2) == 0 for r in ratios),
           "ratio_limits": {"0": [float(sp.limit(r, erf.n, 0)) for r in ratios],
                            "oo": [str(sp.limit(r, erf.n, sp.oo)) for r in ratios]},
           "at_teacher_norm": []}
    for norm in TEACHER_NORMS:
        at = {k: [float(e.subs(erf.n, norm)) for e in v] for k, v in objective.items()}
        out["at_teacher_norm"].append({"norm": norm, "H_vs_L": _spectrum_row(at["L"], at["L + J"]),
                                       "J2_vs_J": _spectrum_row(at["L + J"], at["L + J + l2 J2"])})
    return out


def erf_numerical_spectrum(d: int = 3) -> list:
    """The eigenvalues of ``numerics.hessian(w*, w*, "L", activation="erf")`` for one node ``w* = e_1`` in
    ``d`` dimensions: the witness the closed forms at ``|w*| = 1`` are checked against."""
    Ws = np.eye(d)[:1]
    return np.linalg.eigvalsh(numerics.hessian(Ws, Ws, "L", "true", activation="erf")).tolist()


def single_node_control(settings: dict) -> dict:
    """The one-node spectra at the teacher, ReLU and erf side by side (closed forms), with erf's numerical check."""
    return {"relu": relu_single_node(), "erf": erf_single_node(settings["lambda2"]),
            "erf_numerical_L": erf_numerical_spectrum()}


def compute(seed: int, settings: dict, progress=None) -> dict:
    """Every number of the report, per configuration (the JSON ``data``)."""
    rng = np.random.default_rng(seed)
    rows = []
    for config in configurations(settings):
        sub = np.random.default_rng(rng.integers(2**32))
        rows.append({**{k: config[k] for k in ("extension", "label", "train_output")},
                     "objectives": {k: [v[0], {kk: list(vv) if isinstance(vv, tuple) else vv for kk, vv in v[1].items()}]
                                    for k, v in config["objectives"].items()},
                     "keywords": {k: (list(v) if isinstance(v, tuple) else v) for k, v in config["kw"].items()},
                     "conditioning": conditioning(config, settings, sub),
                     "symbolic_single_node": symbolic_single_node(config, settings),
                     "flows": flows(config, settings, sub)})
        if progress is not None:
            progress.update(1)
    return {"settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.items()}, "configurations": rows,
            "single_node_control": single_node_control(settings)}
