"""The training report's prose about limits comes from the profile and the device: a render under ``full`` or on
CUDA says nothing about CPU threads, cores or reduced sizes; a CPU render names the thread count it ran with."""
from types import SimpleNamespace

import pytest

from verify.training import render
from verify.training.settings import PROFILES


def prose(profile: str, device: str) -> str:
    ctx = SimpleNamespace(profile=profile, device=device, seed=0)
    prof = PROFILES[profile]
    return "\n".join(render.introduction(ctx, prof)) + "\n" + render.limits_section(ctx, prof)


@pytest.mark.parametrize("profile, device", [("full", "cuda"), ("standard", "cuda"), ("full", "cpu")])
def test_no_cpu_or_reduced_size_prose_where_it_does_not_apply(profile, device):
    text = prose(profile, device)
    if device == "cuda":
        assert "CPU thread" not in text and "thread(s)" not in text and "cores" not in text and "2-core" not in text
        assert "wall seconds of the training steps on the GPU" in text
    if profile == "full":
        assert "reduced" not in text.lower() and "The paper's sizes (profile `full`)" in text


def test_a_cpu_render_states_what_it_ran_with():
    text = prose("standard", "cpu")
    assert "1 CPU thread per run" in text and "**Sizes.** These are reduced sizes" in text
    ctx = SimpleNamespace(profile="standard", device="cpu", seed=0)
    prof = {**PROFILES["standard"], "threads": 2, "dtype": "float64"}
    assert "float64 throughout, 2 CPU threads per run" in render.introduction(ctx, prof)[0]
    assert f"{PROFILES['standard']['seeds']}–{PROFILES['standard']['ae']['seeds']} seeds instead of" in \
        render.introduction(ctx, prof)[1]
