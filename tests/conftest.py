"""Shared test set-up: Hypothesis profiles, the optional PyTorch comparison, thread counts."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# CI: deterministic and bounded.  dev: the default for local runs.  thorough: many
# more examples, for hunting bugs (HYPOTHESIS_PROFILE=thorough make test).
settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=25,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
# make fuzz: the differential edge suite at thousands of examples per op (about an hour)
settings.register_profile(
    "fuzz",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture
def torch():
    """PyTorch, for comparisons; the test is skipped cleanly when it is not installed."""
    return pytest.importorskip("torch")


@pytest.fixture
def torch_or_none():
    """PyTorch if installed, else None: edge tests pin exact values and compare when they can."""
    try:
        import torch
    except ImportError:  # pragma: no cover - the exact values still run
        return None
    return torch


@pytest.fixture(autouse=True)
def _seeded():
    import autodiff

    autodiff.manual_seed(0)
    np.random.seed(0)
    # PyTorch's too, where a test uses it: a model initialised by PyTorch and copied
    # into ours (test_lecture_training_step_matches_pytorch_in_float32) otherwise
    # starts from other weights in every run, and some of them failed its tolerance
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(0)


@pytest.fixture
def restore_threads():
    """Put the pool's and BLAS's thread counts back as they were."""
    from autodiff import threads

    before = dict(threads._counts)
    yield
    threads._controller.clear()
    threads._counts.update(before)
    if threads._blas() is not None and threads._blas().lib_controllers:
        threads._blas().limit(limits=before["blas"])
