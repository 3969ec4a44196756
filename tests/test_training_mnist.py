"""Claim 7 on MNIST (verify.training_mnist): the 28x28 autoencoder, the interval rule, the command line, and
how the training report's claim-7 verdict reads an MNIST run.  MNIST itself is never needed: the end-to-end
test writes a few random 28x28 images as Keras' mnist.npz."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from verify import training, training_mnist
from verify.experiments.autoencoder import DenoisingAutoencoder, feature_sides, fourier_multiplier_loss
from verify.report import run
from verify.training import judge as training_judge
from verify.training_mnist import judge as J


# ----------------------------------------------------------------------------- the model at both sizes
def test_feature_sides_halve_rounding_up():
    assert feature_sides(8) == (8, 4, 2, 1)
    assert feature_sides(28) == (28, 14, 7, 4)


@pytest.mark.parametrize("side", [8, 28])
def test_autoencoder_maps_an_image_to_an_image_of_its_side(side):
    net = DenoisingAutoencoder(side=side)
    out = net(torch.rand(3, 1, side, side))
    assert out.shape == (3, 1, side, side)
    assert bool(((out > 0) & (out < 1)).all())  # sigmoid output


def test_autoencoder_layers_follow_the_paper():
    """Encoder 1 -> 32 -> 64 -> 64 channels, stride 2; bottleneck 32 from 64 x 4 x 4 at 28x28 (64 x 1 x 1 at 8x8:
    the layers the digits report always had); the decoder mirrors them."""
    for side, c in ((28, 4), (8, 1)):
        net = DenoisingAutoencoder(side=side)
        convs = [m for m in net.encoder if isinstance(m, torch.nn.Conv2d)]
        assert [(m.in_channels, m.out_channels, m.stride) for m in convs] == [(1, 32, (2, 2)), (32, 64, (2, 2)),
                                                                             (64, 64, (2, 2))]
        assert net.encoder[-1].weight.shape == (32, 64 * c * c)
        assert net.decoder[0].weight.shape == (64 * c * c, 32)
        ups = [m for m in net.decoder if isinstance(m, torch.nn.ConvTranspose2d)]
        assert [(m.in_channels, m.out_channels) for m in ups] == [(64, 64), (64, 32), (32, 1)]


def test_sobolev_loss_at_s_zero_is_the_mse_at_28():
    err = torch.randn(4, 1, 28, 28, dtype=torch.float64)
    assert float(fourier_multiplier_loss(err, 0.0)) == pytest.approx(float(torch.mean(err**2)), rel=1e-12)


# ----------------------------------------------------------------------------- the rule
def test_interval_of_two_seeds_uses_student_t_with_one_degree_of_freedom():
    """logs -0.1 and -0.3: mean -0.2, sd 0.1414, t(0.975, 1) = 12.706 (tables): half-width 12.706 * 0.1 = 1.2706."""
    iv = J.log_ratio_interval([math.exp(-0.1), math.exp(-0.3)], [1.0, 1.0])
    assert iv["mean"] == pytest.approx(-0.2, abs=1e-12)
    assert iv["high"] - iv["mean"] == pytest.approx(1.2706, abs=1e-4)
    assert iv["sobolev_lower"] == 2 and iv["n"] == 2
    assert J.mnist_verdict(iv, True) == "inconclusive"  # two wins are not evidence at 95%


@pytest.mark.parametrize("sobolev, mse, paper, expected", [
    ([0.020, 0.021, 0.019, 0.020], [0.030, 0.031, 0.029, 0.032], True, "confirmed"),
    ([0.020, 0.021, 0.019, 0.020], [0.030, 0.031, 0.029, 0.032], False, "confirmed with qualifications"),
    ([0.030, 0.031, 0.029, 0.032], [0.020, 0.021, 0.019, 0.020], True, "refuted"),
    ([0.020, 0.031, 0.019, 0.032], [0.030, 0.021, 0.029, 0.020], True, "inconclusive"),
    ([0.020, None, 0.019, 0.020], [0.030, 0.031, 0.029, 0.032], True, "inconclusive"),  # a diverged run
    ([0.020], [0.030], True, "inconclusive"),  # one seed: no interval
])
def test_mnist_verdict_on_each_branch(sobolev, mse, paper, expected):
    assert J.mnist_verdict(J.log_ratio_interval(sobolev, mse), paper) == expected


def test_paper_size_needs_every_dimension():
    assert J.at_paper_size(dict(n_train=60000, n_test=10000, epochs=20))
    assert not J.at_paper_size(dict(n_train=50000, n_test=10000, epochs=20))
    assert not J.at_paper_size(dict(n_train=60000, n_test=10000, epochs=10))


# ----------------------------------------------------------------------------- end to end on a fake MNIST
@pytest.fixture
def fake_mnist(tmp_path):
    rng = np.random.default_rng(7)
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=rng.integers(0, 256, (40, 28, 28), dtype=np.uint8), y_train=rng.integers(0, 10, 40),
             x_test=rng.integers(0, 256, (12, 28, 28), dtype=np.uint8), y_test=rng.integers(0, 10, 12))
    return path


def test_quick_run_writes_the_report_and_its_verdict_is_a_smoke_test(tmp_path, fake_mnist):
    out = tmp_path / "out"
    assert run(training_mnist, ["--mnist", str(fake_mnist), "--profile", "quick", "--out", str(out),
                                "--workers", "1", "--no-progress"]) == 0
    payload = json.loads((out / "training_mnist.json").read_text())
    cfg = payload["data"]["autoencoder"]["config"]
    assert (cfg["n_train"], cfg["n_test"]) == (40, 12)  # the profile asks for more than the files hold
    assert cfg["data"]["sha256"] == {"mnist.npz": __import__("hashlib").sha256(fake_mnist.read_bytes()).hexdigest()}
    assert [v["verdict"] for v in payload["verdicts"]] == ["inconclusive"]
    for name in ("training_mnist.md", "training_mnist_curves.png", "training_mnist_reconstructions.png"):
        assert (out / name).stat().st_size > 0
    # the same seeds for both losses: paired comparisons
    losses = payload["data"]["autoencoder"]["losses"]
    assert len(losses["MSE"]["per_seed_final_test_mse"]) == len(losses["Sobolev"]["per_seed_final_test_mse"]) == 2


def test_a_missing_mnist_path_is_a_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SOBOLEV_MNIST", raising=False)
    with pytest.raises(SystemExit) as exc:
        run(training_mnist, ["--out", str(tmp_path), "--profile", "quick"])
    assert exc.value.code == 2 and "no MNIST given" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run(training_mnist, ["--mnist", str(tmp_path / "none.npz"), "--out", str(tmp_path), "--profile", "quick"])
    assert "none.npz" in capsys.readouterr().err


# ----------------------------------------------------------------------------- claim 7 in the training report
def _mnist_data(sobolev, mse, n_train=60000, n_test=10000, epochs=20):
    spread = {"median": float(np.median(sobolev)), "min": min(sobolev), "max": max(sobolev), "n_finite": 4, "n": 4}
    return {"autoencoder": {"config": dict(n_train=n_train, n_test=n_test, epochs=epochs, seeds=[0, 1, 2, 3]),
                            "identity_test_mse": 0.045,
                            "losses": {"Sobolev": {"per_seed_final_test_mse": sobolev, "final_test_mse": spread},
                                       "MSE": {"per_seed_final_test_mse": mse, "final_test_mse": spread}}}}


def _digits(mse, sobolev):
    def s(v):
        return {"median": float(np.median(v)), "min": min(v), "max": max(v), "n_finite": 3, "n": 3}
    return {"config": {"epochs": 20, "seeds": [0, 1, 2]},
            "losses": {"MSE": {"final_test_mse": s(mse), "per_seed_final_test_mse": list(mse)},
                       "Sobolev": {"final_test_mse": s(sobolev), "per_seed_final_test_mse": list(sobolev)}}}


ARCH_JUDGEMENT = {"wins_over_L2": {"H1-exact": 0, "H2": 0, "cases": 0, "H1_by_model": {}},
                  "higher_than_L2": {"H1-exact": 0, "H2": 0}}
ARCH = {"config": {"steps": 10}}
WIN, LOSE = [0.020, 0.021, 0.019, 0.020], [0.030, 0.031, 0.029, 0.032]


@pytest.mark.parametrize("mnist, expected", [
    (None, "confirmed with qualifications"),  # the digits' rule: the paired interval below 0
    (_mnist_data(WIN, LOSE), "confirmed"),  # MNIST at the paper's size, interval below 0
    (_mnist_data(WIN, LOSE, n_train=6000), "confirmed with qualifications"),
    (_mnist_data(LOSE, WIN), "refuted"),  # MNIST decides even against the digits
])
def test_claim7_reads_the_mnist_run_when_there_is_one(mnist, expected):
    digits = _digits((0.03, 0.031, 0.032), (0.02, 0.021, 0.022))
    j = training_judge.judge_autoencoder(digits, ARCH, ARCH_JUDGEMENT, mnist)
    assert j["verdict"] == expected
    assert ("MNIST 28×28" in j["convention"]) == (mnist is not None)


def test_the_training_report_finds_the_full_run_first_and_skips_smoke_runs(tmp_path):
    def put(rel, profile, marker):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"provenance": {"profile": profile}, "data": {"marker": marker}}))

    assert training.mnist_run(tmp_path) == (None, None)
    put("training_mnist.json", "quick", "smoke")
    assert training.mnist_run(tmp_path) == (None, None)
    put("training_mnist.json", "standard", "subset")
    assert training.mnist_run(tmp_path)[0] == {"marker": "subset"}
    put("full/training_mnist.json", "full", "paper")
    data, where = training.mnist_run(tmp_path)
    assert data == {"marker": "paper"} and where["file"] == "full/training_mnist.json" and len(where["sha256"]) == 64


# ----------------------------------------------------------------------------- verify.all
def test_verify_all_runs_the_mnist_report_only_when_mnist_is_named(monkeypatch):
    from verify import all as verify_all

    monkeypatch.delenv("SOBOLEV_MNIST", raising=False)
    assert verify_all.optional_reports() == ()
    monkeypatch.setenv("SOBOLEV_MNIST", "/some/where/mnist.npz")
    assert verify_all.optional_reports() == ("training_mnist",)


def test_index_only_lists_an_mnist_report_when_its_json_is_there(quick_reports, tmp_path, fake_mnist):
    import shutil

    from verify import REPORTS
    from verify import all as verify_all

    for name in REPORTS:
        shutil.copy(quick_reports / f"{name}.json", tmp_path / f"{name}.json")
    assert verify_all.main(["--index-only", "--out", str(tmp_path), "--device", "cpu"]) == 0
    assert "training_mnist" not in (tmp_path / "README.md").read_text()
    assert run(training_mnist, ["--mnist", str(fake_mnist), "--profile", "quick", "--out", str(tmp_path),
                                "--workers", "1", "--no-progress"]) == 0
    assert verify_all.main(["--index-only", "--out", str(tmp_path), "--device", "cpu"]) == 0
    assert "| training_mnist | [training_mnist.md](training_mnist.md)" in (tmp_path / "README.md").read_text()


def test_runs_worse_than_the_noisy_input_are_counted_per_loss():
    summary = {"identity_test_mse": 0.045,
               "losses": {"MSE": {"per_seed_final_test_mse": [0.0675, 0.004, 0.114, None]},
                          "Sobolev": {"per_seed_final_test_mse": [0.0046, 0.0044, 0.045, 0.0043]}}}
    assert J.worse_than_input(summary) == {"MSE": "3/4", "Sobolev": "0/4"}  # equal to the identity is not worse
