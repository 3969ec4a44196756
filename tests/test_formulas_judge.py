"""The formulas report's judge on constructed summaries (each rule crossed in both directions), and the
verdicts of the quick report (``quick_reports`` fixture) recomputed independently from its JSON numbers."""
import copy
import json

import pytest

from verify.formulas import judge as J

OBJECTS = ("mean_field", "true_gradient", "mean_jacobian_a", "mean_jacobian_b", "true_hessian_a",
           "true_hessian_b", "autograd_hessian")


def existence(missing: dict) -> list:
    """Existence table: every object exists at both angles except ``missing[(part, object)] = [angles]``."""
    return [{"part": p, "object": o, "parallel": "parallel" not in missing.get((p, o), ()),
             "antiparallel": "antiparallel" not in missing.get((p, o), ())} for p in ("L", "J") for o in OBJECTS]


def symbolic(matches: dict) -> list:
    return [{"formula": f, "hessian": h, "equal": h in matches[f], "proof": "symbolic" if h in matches[f] else "numeric",
             "max_entry_gap": 0.0 if h in matches[f] else 0.5} for f in ("L", "H") for h in ("true", "mean", "autograd")]


def numeric(matches: dict) -> list:
    return [{"formula": f, "hessian": h, "max_abs_gap": 1e-16 if h in matches[f] else 0.3, "max_abs_entry": 0.9,
             "points": 3, "d": 5} for f in ("L", "H") for h in ("true", "mean", "autograd")]


PAPER = {"L": ("true", "mean"), "H": ("mean",)}  # what the paper's formulas are (the derived result)
J_MISSING = {("J", o): ("parallel", "antiparallel") for o in OBJECTS[1:6]}


def base() -> dict:
    """A summary shaped like the report's: the derivation holds, J's fields differ, the paper's H is the mean
    field's Jacobian."""
    row = [[0.5, 0.5, 0.5]] * 3
    return {
        "proofs": {"L: self Jacobian is I/2": "0", "J: self Jacobian is I/2": "0", "J: mean-field remainder": "0"},
        "cho_saul_differences": {"relu_relu": "0", "step_step": "0"},
        "componentwise_check_max_gap": {"d=2": {"L.true_gradient": 1e-166, "J.true_gradient": 0.0},
                                        "d=3": {"L.true_gradient": 5e-166, "J.true_gradient": 2e-165}},
        "mean_minus_true_pair_term": {"L": ["0", "0"], "J": ["0", "-n_b*cos(theta)/(2*pi)"]},
        "existence_at_degenerate_angles": existence(J_MISSING),
        "paper_identification_symbolic": symbolic(PAPER),
        "paper_identification_numeric": numeric(PAPER),
        "single_node_spectra": {"theta": [0.1, 0.2, 0.3], "L/true": row, "L/mean": row,
                                "H/true": [[1.0, 1.0, 1.0]] * 3, "H/mean": [[0.7, 1.0, 1.2]] * 3},
    }


def verdict(s, claim):
    return J.judge(s)["verdicts"][claim - 1]


# ----------------------------------------------------------------------------- claim 1
def test_claim1_flips_across_its_rule():
    s = base()
    row = verdict(s, 1)
    assert row["verdict"] == "confirmed with qualifications"
    assert row["convention"] == ("losses exact (arc-cosine kernels, derived and checked); the paper's gradients are "
                                 "the mean field E_x[∇_W ℓ]; for J and H the true gradient differs by a boundary term "
                                 "and does not exist at parallel rows (incl. the teacher)")
    same = copy.deepcopy(s)
    same["mean_minus_true_pair_term"]["J"] = ["0", "0"]
    assert verdict(same, 1)["verdict"] == "confirmed"
    assert "boundary term" not in verdict(same, 1)["convention"]
    unproven = copy.deepcopy(s)
    unproven["proofs"]["J: mean-field remainder"] = "sin(theta)**2 + cos(theta)**2 - 1"
    assert verdict(unproven, 1)["verdict"] == "inconclusive"
    assert verdict(unproven, 1)["convention"].endswith("[a proof failed: see report]")
    kernel = copy.deepcopy(s)
    kernel["cho_saul_differences"]["step_step"] = "theta/pi"
    assert verdict(kernel, 1)["verdict"] == "inconclusive"
    wrong = copy.deepcopy(unproven)  # a numeric disagreement outranks an unproven identity
    wrong["componentwise_check_max_gap"]["d=3"]["J.true_gradient"] = 1e-3
    assert verdict(wrong, 1)["verdict"] == "refuted"
    assert "d=3: J.true_gradient" in verdict(wrong, 1)["convention"]


def test_componentwise_tolerance_is_the_boundary():
    s = base()
    s["componentwise_check_max_gap"]["d=2"]["L.true_gradient"] = J.COMPONENTWISE_TOL * 0.99
    assert verdict(s, 1)["verdict"] == "confirmed with qualifications"
    s["componentwise_check_max_gap"]["d=2"]["L.true_gradient"] = J.COMPONENTWISE_TOL
    assert verdict(s, 1)["verdict"] == "refuted"


def test_claim1_existence_clause_follows_the_table():
    s = base()
    s["existence_at_degenerate_angles"] = existence({})  # the true gradient exists everywhere
    assert "does not exist" not in verdict(s, 1)["convention"]
    s["existence_at_degenerate_angles"] = existence({("J", "true_gradient"): ("antiparallel",)})
    assert verdict(s, 1)["convention"].endswith("and does not exist at anti-parallel rows")
    s["mean_minus_true_pair_term"]["L"] = ["1", "0"]
    assert "for L, J and H the true gradient differs" in verdict(s, 1)["convention"]


# ----------------------------------------------------------------------------- claim 2
def test_claim2_flips_across_its_rule():
    s = base()
    row = verdict(s, 2)
    assert row["verdict"] == "confirmed with qualifications"
    assert row["convention"] == ("∇²L = Hessian of L = Jacobian of the mean field of L; ∇²H = Jacobian of the mean "
                                 "field of H (not the Hessian of the population H, not the expected autograd "
                                 "Hessian); θ ∈ (0, π)")
    hessians = {"L": ("true", "mean"), "H": ("true",)}
    s["paper_identification_symbolic"], s["paper_identification_numeric"] = symbolic(hessians), numeric(hessians)
    assert verdict(s, 2)["verdict"] == "confirmed"
    nothing = {"L": ("true", "mean"), "H": ()}
    s["paper_identification_symbolic"], s["paper_identification_numeric"] = symbolic(nothing), numeric(nothing)
    assert verdict(s, 2)["verdict"] == "refuted"
    assert verdict(s, 2)["convention"] == "∇²H equals none of the three derived Hessians"


def test_claim2_inconclusive_when_numeric_and_symbolic_disagree():
    s = base()
    for r in s["paper_identification_numeric"]:
        if (r["formula"], r["hessian"]) == ("H", "mean"):
            r["max_abs_gap"] = 1e-3  # the numbers say different, the proof says equal
    assert verdict(s, 2)["verdict"] == "inconclusive"
    for r in s["paper_identification_numeric"]:
        if (r["formula"], r["hessian"]) == ("H", "mean"):
            r["max_abs_gap"] = J.NUMERIC_TOL * 0.9  # within tolerance of an O(1) entry
    assert verdict(s, 2)["verdict"] == "confirmed with qualifications"
    s["paper_identification_numeric"] = []  # no numeric comparison run: the symbolic one decides
    assert verdict(s, 2)["verdict"] == "confirmed with qualifications"


# ----------------------------------------------------------------------------- sentences
def test_fields_sentences_only_state_what_the_numbers_show():
    s = base()
    text = " ".join(J.judge(s)["fields"])
    assert "For `L` the two fields are **identical**" in text
    assert "boundary term `−n_b cos θ/(2π) e2`" in text
    assert "**kink wherever two rows are parallel or anti-parallel**, in particular at the teacher" in text
    s["existence_at_degenerate_angles"] = existence({})
    assert "kink" not in " ".join(J.judge(s)["fields"])
    s["existence_at_degenerate_angles"] = existence({("J", "true_gradient"): ("antiparallel",)})
    text = " ".join(J.judge(s)["fields"])
    assert "kink wherever two rows are anti-parallel" in text and "teacher" not in text
    s["mean_minus_true_pair_term"]["J"] = ["0", "0"]
    text = " ".join(J.judge(s)["fields"])
    assert "boundary term" not in text and "For `J` the two fields are **identical**" in text


def test_conclusion_follows_identification_and_existence():
    s = base()
    text = J.judge(s)["conclusion"]
    assert text.startswith("The paper's `∇²L` is the Hessian of the population `L`, which for `L` is also the "
                           "Jacobian of the mean field.")
    assert "`∇²H` is the **Jacobian of the mean field of `H`**; it is *not* the Hessian of the population `H`, " \
           "which carries the boundary term of `J`." in text
    assert "Neither formula is the expected autograd Hessian" in text
    assert "the `L` formula has a limit, the `H` formula has none" in text
    s["existence_at_degenerate_angles"] = existence({})
    assert "the `H` formula has a limit" in J.judge(s)["conclusion"]
    auto = {"L": ("true", "mean"), "H": ("mean", "autograd")}
    s["paper_identification_symbolic"], s["paper_identification_numeric"] = symbolic(auto), numeric(auto)
    assert "Neither formula is the expected autograd Hessian" not in J.judge(s)["conclusion"]


def test_derivation_and_diagonal_sentences():
    s = base()
    out = J.judge(s)
    assert out["derivation"]["proofs"] == "each simplified to exactly zero" and out["diagonal"] == "(proven)"
    assert out["derivation"]["componentwise"].startswith("Every entry agrees")
    s["proofs"]["J: self Jacobian is I/2"] = "x"
    s["componentwise_check_max_gap"]["d=2"]["J.true_gradient"] = 0.1
    out = J.judge(s)
    assert out["derivation"]["proofs"].startswith("2 of 3 simplified to zero")
    assert out["diagonal"] == "(not proven: see section 5)"
    assert "**disagreement**" in out["derivation"]["componentwise"]


def test_spectra_caption_flips():
    s = base()
    assert J.judge(s)["spectra_caption"] == ("for `L` the true and mean curves coincide; "
                                             "for `H` the true and mean curves separate")
    s["single_node_spectra"]["H/mean"] = s["single_node_spectra"]["H/true"]
    s["single_node_spectra"]["L/mean"] = [[0.5, 0.5, 0.5 + 1e-6]] * 3
    assert J.judge(s)["spectra_caption"] == ("for `L` the true and mean curves separate; "
                                             "for `H` the true and mean curves coincide")


# ----------------------------------------------------------------------------- the quick report
@pytest.fixture(scope="module")
def quick_formulas(quick_reports):
    return json.loads((quick_reports / "formulas.json").read_text())


def test_quick_verdicts_follow_the_rules_recomputed_from_the_json(quick_formulas):
    data, verdicts = quick_formulas["data"], {v["claim"]: v["verdict"] for v in quick_formulas["verdicts"]}
    # claim 1, recomputed without the judge
    numeric_ok = all(v < 1e-25 for row in data["componentwise_check_max_gap"].values() for v in row.values())
    symbolic_ok = all(v == "0" for v in [*data["proofs"].values(), *data["cho_saul_differences"].values()])
    differ = any(c != "0" for term in data["mean_minus_true_pair_term"].values() for c in term)
    expected1 = ("refuted" if not numeric_ok else "inconclusive" if not symbolic_ok
                 else "confirmed with qualifications" if differ else "confirmed")
    assert verdicts[1] == expected1
    # claim 2, recomputed without the judge
    equal = {(r["formula"], r["hessian"]): r["equal"] for r in data["paper_identification_symbolic"]}
    agree = all((r["max_abs_gap"] <= 1e-9 * max(1.0, r["max_abs_entry"])) == equal[(r["formula"], r["hessian"])]
                for r in data["paper_identification_numeric"])
    matched = {f: [h for (g, h), e in equal.items() if g == f and e] for f in ("L", "H")}
    expected2 = ("inconclusive" if not agree else "refuted" if not all(matched.values())
                 else "confirmed" if all("true" in m for m in matched.values()) else "confirmed with qualifications")
    assert verdicts[2] == expected2


def test_quick_json_data_is_the_judges_whole_input(quick_formulas, quick_reports):
    """The JSON ``data`` is the summary the judge read: judging it again gives the written verdicts and findings."""
    out = J.judge(quick_formulas["data"])
    assert out["verdicts"] == quick_formulas["verdicts"]
    md = (quick_reports / "formulas.md").read_text()
    for sentence in [*out["fields"], out["conclusion"], out["spectra_caption"], out["derivation"]["componentwise"]]:
        assert sentence in md
