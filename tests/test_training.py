"""verify.experiments (targets, models, the training loop, the autoencoder loss) and the training report.

Training here is float32 (as in the report); tolerances on losses are set from float32 rounding
(relative ~1e-7 per operation) of the quantities compared.
"""
import json
import math

import numpy as np
import pytest
import torch
from scipy import stats

from numerics.differentiation import chebyshev_points
from verify import training
from verify.experiments import autoencoder as ae
from verify.experiments.loop import VARIANTS, derivative_targets, input_derivatives, train, variant_loss
from verify.experiments.models import ARCHITECTURES, ReluStudent, tanh_mlp
from verify.experiments.summary import band, spread
from verify.experiments.targets import (ackley, ackley_data, ackley_gradient, line_data, relu_network,
                                        relu_network_gradient, target_1d, teacher_data)
from verify.report import one_thread


pytestmark = pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad=True to a scalar")


@pytest.fixture(autouse=True)
def _single_thread():
    with one_thread():
        yield


def _rng(k=0):
    return np.random.default_rng(k)


# ----------------------------------------------------------------------------- targets
@pytest.mark.parametrize("name", ["f1", "f2", "f3"])
def test_hand_written_1d_derivatives_match_autograd(name):
    x = torch.linspace(-1, 1, 57, dtype=torch.float64, requires_grad=True)
    formulas = {"f1": lambda t: torch.sin(2 * math.pi * t) + torch.sin(20 * math.pi * t),
                "f2": lambda t: t + torch.sin(2 * math.pi * t**4),
                "f3": lambda t: torch.exp(t) * torch.sin(20 * t)}
    f = formulas[name](x)
    (df,) = torch.autograd.grad(f.sum(), x, create_graph=True)
    (d2f,) = torch.autograd.grad(df.sum(), x)
    v, dv, d2v = target_1d(name, x.detach().numpy())
    np.testing.assert_allclose(v, f.detach().numpy(), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(dv, df.detach().numpy(), rtol=1e-12, atol=1e-11)
    np.testing.assert_allclose(d2v, d2f.numpy(), rtol=1e-12, atol=1e-9)


def test_ackley_gradient_matches_autograd_away_from_the_origin():
    X = torch.tensor(_rng().uniform(-2, 2, (50, 2)), dtype=torch.float64, requires_grad=True)
    r = torch.sqrt(0.5 * (X**2).sum(1))
    f = (-20 * torch.exp(-0.2 * r) - torch.exp(0.5 * torch.cos(2 * math.pi * X).sum(1)) + math.e + 20)
    (g,) = torch.autograd.grad(f.sum(), X)
    np.testing.assert_allclose(ackley(X.detach().numpy()), f.detach().numpy(), rtol=1e-14)
    np.testing.assert_allclose(ackley_gradient(X.detach().numpy()), g.numpy(), rtol=1e-12, atol=1e-12)
    assert ackley(np.zeros((1, 2)))[0] == pytest.approx(0.0, abs=1e-14)  # global minimum 0 at the origin


def test_relu_network_gradient():
    W = _rng().standard_normal((3, 6))
    X = _rng(1).standard_normal((40, 6))
    Xt = torch.tensor(X, requires_grad=True)
    g = torch.relu(Xt @ torch.tensor(W).T).sum(1)
    (grad,) = torch.autograd.grad(g.sum(), Xt)
    np.testing.assert_allclose(relu_network(W)(X), g.detach().numpy(), rtol=1e-14)
    np.testing.assert_allclose(relu_network_gradient(W, X), grad.numpy(), rtol=1e-14, atol=1e-15)


# ----------------------------------------------------------------------------- the loop
def test_same_seed_gives_identical_curves_and_another_seed_does_not():
    data = line_data("f2", 48, 20, _rng())
    runs = [train(lambda: tanh_mlp(1, 16, 2), data, "H1-exact", 15, 1e-3, seed, eval_every=5) for seed in (3, 3, 4)]
    for key in ("loss", "value_mse", "test_mse", "eval_steps"):
        np.testing.assert_array_equal(getattr(runs[0], key), getattr(runs[1], key))
    assert not np.array_equal(runs[0].loss, runs[2].loss)
    r = runs[0]
    assert len(r.loss) == len(r.value_mse) == len(r.seconds) == 16  # states 0..15
    assert list(r.eval_steps) == [0, 5, 10, 15] and np.all(np.diff(r.seconds) >= 0) and r.seconds[0] == 0


def test_lbfgs_phase_and_early_stop():
    data = line_data("f2", 32, 10, _rng())
    r = train(lambda: tanh_mlp(1, 8, 1), data, "H1-exact", 4, 1e-2, 0, lbfgs_steps=3, eval_every=2)
    assert len(r.loss) == 4 + 3 + 1 and list(r.eval_steps) == [0, 2, 4, 6, 7]
    assert r.loss[-1] < r.loss[4]  # L-BFGS with a line search does not increase the loss
    s = train(lambda: tanh_mlp(1, 8, 1), data, "L2", 50, 1e-2, 0, stop_below=1e9)  # below at once
    assert list(s.eval_steps) == [0] and len(s.loss) == 1 and s.seconds[0] == 0


def test_a_module_instance_is_copied_not_trained_in_place():
    data = line_data("f1", 32, 10, _rng())
    torch.manual_seed(0)
    net = tanh_mlp(1, 8, 1)
    before = [p.detach().clone() for p in net.parameters()]
    r = train(net, data, "L2", 5, 1e-2, 0, keep_model=True)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert r.model is not net


def test_h1_exact_loss_vanishes_at_the_teacher_and_l2_ignores_derivatives():
    rng = _rng(2)
    W_star = rng.standard_normal((3, 20)) / math.sqrt(20)
    data = teacher_data(W_star, 200, 10, rng, 1e-3)
    model = ReluStudent(3, 20).double()
    with torch.no_grad():
        model.W.copy_(torch.tensor(W_star))
    x = torch.tensor(data.x, requires_grad=True)
    y, dy = torch.tensor(data.y), torch.tensor(data.dy)
    loss, value = variant_loss(model, x, y, dy, None)
    assert float(loss) < 1e-25 and float(value) < 1e-25  # float64: exact up to rounding
    # the same model with wrong derivative targets: L2 does not notice, H1 does
    bad = dy + 1.0
    assert float(variant_loss(model, x, y, None, None)[0]) < 1e-25
    assert float(variant_loss(model, x, y, bad, None)[0]) == pytest.approx(20.0, rel=1e-12)
    # L2 training never reads data.dy: corrupting it leaves the curves unchanged
    a = train(lambda: ReluStudent(3, 20), data, "L2", 10, 0.05, 0, optimizer="gd")
    data.dy = data.dy + 7.0
    b = train(lambda: ReluStudent(3, 20), data, "L2", 10, 0.05, 0, optimizer="gd")
    np.testing.assert_array_equal(a.loss, b.loss)
    assert derivative_targets(data, "L2").dy is None


def test_variant_losses_are_the_stated_sums():
    data = line_data("f3", 40, 10, _rng())
    torch.manual_seed(0)
    net = tanh_mlp(1, 8, 2).double()
    x = torch.tensor(data.x, requires_grad=True)
    y, dy, d2y = (torch.tensor(a) for a in (data.y, data.dy, data.d2y))
    u, g, h = input_derivatives(net, x, 2)
    # autograd's input derivatives against central differences of the model (float64)
    eps = 1e-4
    with torch.no_grad():
        up, um, u0 = net(x + eps), net(x - eps), net(x)
    np.testing.assert_allclose(g[:, 0].detach().numpy(), ((up - um) / (2 * eps)).numpy(), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(h[:, 0].detach().numpy(), ((up - 2 * u0 + um) / eps**2).numpy(), rtol=1e-4, atol=1e-5)
    l2 = float(torch.mean((u - y) ** 2))
    j1 = float(torch.mean((g - dy) ** 2))
    j2 = float(torch.mean((h - d2y) ** 2))
    assert float(variant_loss(net, x, y, None, None)[0]) == pytest.approx(l2, rel=1e-12)
    assert float(variant_loss(net, x, y, dy, None)[0]) == pytest.approx(l2 + j1, rel=1e-12)
    assert float(variant_loss(net, x, y, dy, d2y)[0]) == pytest.approx(l2 + j1 + j2, rel=1e-12)


def test_h2_loss_vanishes_for_a_model_that_is_the_target():
    class F1(torch.nn.Module):
        def forward(self, x):
            return (torch.sin(2 * math.pi * x) + torch.sin(20 * math.pi * x)).squeeze(-1)

    data = line_data("f1", 100, 10, _rng())
    t = derivative_targets(data, "H2")
    x = torch.tensor(data.x, requires_grad=True)
    loss, _ = variant_loss(F1(), x, torch.tensor(t.y), torch.tensor(t.dy), torch.tensor(t.d2y))
    # float64 rounding of f'' ~ (20 pi)^2 ~ 4e3: squared error ~ (1e-12)^2, relative to mean f''^2 ~ 1e7
    assert float(loss) < 1e-16 * float(np.mean(data.d2y**2))


def test_fdm_targets_match_exact_derivatives_to_second_order():
    errs = []
    for n in (400, 800):  # f2 has a third derivative ~1e4 near x = +-1: coarser grids are pre-asymptotic
        data = line_data("f2", n, 10, _rng())
        dy = derivative_targets(data, "H1-FDM").dy
        errs.append(np.abs(dy - data.dy).max())
    assert 3.3 < errs[0] / errs[1] < 4.7, errs  # halving h divides the error by about 4
    # 2-D grid, both axes
    d = ackley_data("uniform", 200, 10, _rng())
    dy = derivative_targets(d, "H1-FDM").dy
    assert np.linalg.norm(dy - d.dy) / np.linalg.norm(d.dy) < 0.02
    # Chebyshev: near machine precision on a smooth 1-D target with enough points
    c = line_data("f2", 80, 10, _rng(), kind="chebyshev")
    np.testing.assert_allclose(c.x[:, 0], chebyshev_points(79))
    dyc = derivative_targets(c, "H1-Chebyshev").dy
    assert np.abs(dyc - c.dy).max() < 1e-6 * np.abs(c.dy).max()


def test_fdm_targets_at_scattered_points_by_central_differences():
    rng = _rng(5)
    W_star = rng.standard_normal((2, 30)) / math.sqrt(30)
    data = teacher_data(W_star, 100, 10, rng, 1e-4)
    t = derivative_targets(data, "H1-FDM")
    assert t.queries == 2 * 100 * 30
    # piecewise linear: exact except where a kink lies within the step (probability ~ 1e-4 per unit)
    exact_rows = np.all(np.abs(t.dy - data.dy) < 1e-8, axis=1)
    assert exact_rows.mean() > 0.95


def test_bad_variants_and_missing_targets_raise():
    uniform = line_data("f1", 20, 5, _rng())
    with pytest.raises(ValueError, match="unknown variant"):
        train(lambda: tanh_mlp(1, 4, 1), uniform, "H3", 1, 1e-3, 0)
    with pytest.raises(ValueError, match="Chebyshev grid"):
        derivative_targets(uniform, "H1-Chebyshev")
    cheb = line_data("f1", 20, 5, _rng(), kind="chebyshev")
    with pytest.raises(ValueError, match="uniform grid"):
        derivative_targets(cheb, "H1-FDM")
    teacher = teacher_data(np.ones((1, 3)), 10, 5, _rng(), 1e-3)
    with pytest.raises(ValueError, match="second derivatives"):
        derivative_targets(teacher, "H2")
    with pytest.raises(ValueError, match="optimizer"):
        train(lambda: tanh_mlp(1, 4, 1), uniform, "L2", 1, 1e-3, 0, optimizer="sgdm")
    assert VARIANTS == ("L2", "H1-exact", "H1-FDM", "H1-Chebyshev", "H2")


def test_every_architecture_maps_n_by_1_to_n():
    x = torch.linspace(-1, 1, 7)[:, None]
    for name, factory in ARCHITECTURES.items():
        torch.manual_seed(0)
        assert factory()(x).shape == (7,), name


# ----------------------------------------------------------------------------- autoencoder
def test_fourier_multiplier_loss_s0_is_mse_and_s1_is_larger():
    err = torch.tensor(_rng().standard_normal((5, 1, 8, 8)))
    mse = torch.mean(err**2)
    # normalisation: means over batch and pixels, averaged over the two axes -> s = 0 is the MSE itself
    assert float(ae.fourier_multiplier_loss(err, 0.0)) == pytest.approx(float(mse), rel=1e-13)
    s1 = float(ae.fourier_multiplier_loss(err, 1.0))
    assert s1 >= float(mse)
    # a constant error has only the zero frequency: every s gives the MSE
    const = torch.full((2, 1, 8, 8), 0.3, dtype=torch.float64)
    assert float(ae.fourier_multiplier_loss(const, 1.0)) == pytest.approx(0.09, rel=1e-12)
    # one Fourier mode k along the last axis only: weight (1 + (2 pi k)^2) on that axis, 1 on the other
    k = 2
    c = (torch.arange(8, dtype=torch.float64) + 0.5) / 8
    mode = torch.cos(2 * math.pi * k * c).expand(1, 1, 8, 8)
    expected = float(torch.mean(mode**2)) * ((1 + (2 * math.pi * k) ** 2) + 1) / 2
    assert float(ae.fourier_multiplier_loss(mode, 1.0)) == pytest.approx(expected, rel=1e-12)


def test_digits_autoencoder_is_seeded_and_shaped():
    clean_train, clean_test = ae.split_digits(0)
    assert clean_train.shape[1:] == (8, 8) and len(clean_train) + len(clean_test) == 1797
    assert clean_train.min() >= 0 and clean_train.max() <= 1
    a = ae.train_autoencoder("Sobolev", clean_train[:256], clean_test[:64], 1, 7, n_show=3)
    b = ae.train_autoencoder("Sobolev", clean_train[:256], clean_test[:64], 1, 7, n_show=3)
    np.testing.assert_array_equal(a.test_mse, b.test_mse)
    assert a.reconstructions.shape == (3, 8, 8) and list(a.eval_steps) == [0, 1, 2]
    with pytest.raises(ValueError, match="unknown autoencoder loss"):
        ae.train_autoencoder("L1", clean_train[:10], clean_test[:10], 1, 0)


# ----------------------------------------------------------------------------- summaries and the report
def test_spread_and_band_treat_unreached_as_infinite():
    s = spread([3.0, None, 1.0])
    assert s == {"median": 3.0, "min": 1.0, "max": None, "n_finite": 2, "n": 3}
    b = band([[1.0, np.nan], [3.0, 2.0], [2.0, 4.0]])
    assert b["median"] == [2.0, 4.0] and b["min"] == [1.0, 2.0] and b["max"] == [3.0, None]


@pytest.fixture(scope="module")
def quick(quick_reports):
    """The quick report of the shared session run (seed 3, CPU): its JSON payload and its Markdown."""
    return (json.loads((quick_reports / "training.json").read_text()),
            (quick_reports / "training.md").read_text())


def test_quick_report_json_and_markdown(quick):
    payload, md = quick
    data = payload["data"]
    json.dumps(data, allow_nan=False)  # no NaN or inf anywhere
    assert {v["claim"] for v in payload["verdicts"]} == {5, 6, 7}
    assert all(v["evidence"] == "training.md" and v["convention"] for v in payload["verdicts"])
    assert set(payload["files"]) == {"training.md", "training_ackley.png", "training_architectures.png",
                                     "training_high_dimension.png", "training_autoencoder.png",
                                     "training_autoencoder_reconstructions.png"}
    ack = data["ackley"]["variants"]
    assert set(ack) == {"L2", "H1-exact", "H1-FDM", "H1-Chebyshev"}
    assert len(ack["L2"]["per_seed"]) == training.PROFILES["quick"]["seeds"]
    assert len(ack["L2"]["test_mse_curve"]["median"]) == len(data["ackley"]["eval_steps"])
    assert {r["variant"] for r in data["high_dimension"]["rows"]} == set(training.HD_VARIANTS)
    assert set(data["autoencoder"]["losses"]) == {"MSE", "Sobolev"}
    assert data["profile_settings"]["highdim"]["widths"] == list(training.PROFILES["quick"]["highdim"]["widths"])
    assert "## Verdicts" in md and "What limits these comparisons" in md
    # the quick profile runs one width only: no sentence about another width
    assert data["high_dimension"]["config"]["widths"] == [1]
    assert "K = 4" not in md and "wide student" not in md and "K=4" not in json.dumps(payload["verdicts"])


# the rules of docs/claims.md (claims 5-7), written again here from the JSON numbers: Student-t intervals of per-seed
# paired log ratios, Bonferroni within each rule at a family-wise 95%
def _t_bounds(values, level):
    """(low, high) of the Student-t interval of the mean; open ends for fewer than 2 values or an infinite one."""
    if len(values) < 2 or not all(math.isfinite(v) for v in values):
        return -math.inf, math.inf
    n, mean = len(values), sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    return mean - half, mean + half


def _claim5_pairs(ack):
    """{(variant, key): (upper bounds, lower bounds)} of the per-seed log step ratios of the informative pairs."""
    budget, out = ack["config"]["steps"], {}
    for v in ("H1-FDM", "H1-Chebyshev"):
        for key in ("1e-01", "1e-02", "1e-03", "1e-04", "1e-05"):
            up, lo = [], []
            for sa, sb in zip(ack["variants"][v]["per_seed"], ack["variants"]["L2"]["per_seed"]):
                a, b = sa["thresholds"][key]["steps"], sb["thresholds"][key]["steps"]
                if a is None and b is None:
                    continue
                a, b = (None if x is None else max(x, 1) for x in (a, b))  # reached at step 0: one step
                up.append(math.inf if a is None else math.log(a / (budget if b is None else b)))
                lo.append(-math.inf if b is None else math.log((budget if a is None else a) / b))
            if up:
                out[(v, key)] = (up, lo)
    return out


def _rule5(ack) -> str:
    """docs/claims.md, claim 5, recomputed from the JSON numbers."""
    pairs = _claim5_pairs(ack)
    m = len(pairs)
    level = 1 - 0.05 / max(m, 1)
    good = slow = 0
    for up, lo in pairs.values():
        high = _t_bounds(up, level)[1]  # open when a seed's upper bound is infinite
        low = _t_bounds(lo, level)[0]
        good += high < math.log(1.25)
        slow += low > math.log(1.25)
    paper = all(ps["thresholds"][k]["steps"] is not None for v in ("H1-FDM", "H1-Chebyshev")
                for ps in ack["variants"][v]["per_seed"] for k in ("1e-03", "1e-04", "1e-05"))
    if m and good == m and paper:
        return "confirmed"
    if m and 2 * good >= m:
        return "confirmed with qualifications"
    return "refuted" if m and 2 * slow >= m else "inconclusive"


def _log_ratio_bounds(num, den, level):
    if any(v is None or v <= 0 for v in [*num, *den]):
        return -math.inf, math.inf
    return _t_bounds([math.log(a / b) for a, b in zip(num, den)], level)


def _low_at_largest_d(hd) -> dict:
    dmax, widths = max(hd["config"]["dims"]), hd["config"]["widths"]
    level, out = 1 - 0.05 / (8 * len(widths)), {}
    for K in widths:
        per = {r["variant"]: r["per_seed_final_rel_error"] for r in hd["rows"] if r["K"] == K and r["d"] == dmax}
        out[str(K)] = {v: all(e is not None and e > 0 for e in per[v])
                       and _t_bounds([math.log(e) for e in per[v]], level)[1] < math.log(1e-2) for v in per}
        vs_l2 = [_log_ratio_bounds(per[h], per["L2"], level) for h in ("H1-exact", "H1-FDM")]
        vs_matched = [_log_ratio_bounds(per[h], per["L2 (matched targets)"], level) for h in ("H1-exact", "H1-FDM")]
        out[str(K)]["beats_L2"] = all(high < 0 for _, high in vs_l2)
        out[str(K)]["beats_matched_L2"] = (None in per["L2 (matched targets)"]) or all(high < 0 for _, high in vs_matched)
        out[str(K)]["loses_to_L2"] = any(low > 0 for low, _ in vs_l2)
    return out


def _rule6(hd, profile) -> str:
    low = _low_at_largest_d(hd).values()
    both = [v["H1-exact"] and v["H1-FDM"] for v in low]
    beats = all(v["beats_L2"] for v in low)
    if profile == "full" and all(both) and beats and all(v["beats_matched_L2"] for v in low):
        return "confirmed"
    if any(both) and beats:
        return "confirmed with qualifications"
    return "refuted" if any(v["loses_to_L2"] for v in low) else "inconclusive"


def _rule7(auto) -> str:
    L = auto["losses"]
    low, high = _log_ratio_bounds(L["Sobolev"]["per_seed_final_test_mse"], L["MSE"]["per_seed_final_test_mse"], 0.95)
    return "confirmed with qualifications" if high < 0 else "refuted" if low > 0 else "inconclusive"


def test_quick_report_verdicts_are_the_rules_applied_to_its_numbers(quick):
    payload, md = quick
    data = payload["data"]
    rules = {5: _rule5(data["ackley"]), 6: _rule6(data["high_dimension"], "quick"), 7: _rule7(data["autoencoder"])}
    for v in payload["verdicts"]:
        assert v["verdict"] == "inconclusive"  # the quick profile is a smoke test
        assert v["convention"].startswith(
            f"quick smoke-test profile, too small to judge (rules would give: {rules[v['claim']]}); ")
    assert data["high_dimension"]["summary_at_largest_d"] == _low_at_largest_d(data["high_dimension"])
    # the H1 and H2 wins over L2 in 1-D, recounted from the per-seed paired intervals
    wins = data["architectures"]["wins_over_L2"]
    res = data["architectures"]["results"]
    cases = [(r["target"], r["architecture"]) for r in res.values() if r["variant"] == "L2"]
    assert wins["cases"] == len(cases)
    level = 1 - 0.05 / (2 * len(cases))
    for v in ("H1-exact", "H2"):
        assert wins[v] == sum(_log_ratio_bounds(res[f"{t} | {a} | {v}"]["per_seed_final_test_mse"],
                                                res[f"{t} | {a} | L2"]["per_seed_final_test_mse"], level)[1] < 0
                              for t, a in cases)
    # the judge applied to the stored numbers gives back the stored verdict rows and the stored findings
    j = training.judge.judge(data, "quick", payload["provenance"]["device"])
    assert [{**v, "evidence": "training.md"} for v in j["verdicts"]] == payload["verdicts"]
    for part in ("ackley", "architectures", "autoencoder"):
        assert "**Finding.** " + j[part]["finding"] in md
    assert j["high_dimension"]["finding"] in md
