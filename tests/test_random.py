"""manual_seed takes any 64-bit seed, as PyTorch does."""

from __future__ import annotations

import pytest

import autodiff


@pytest.mark.parametrize(
    ("seed", "initial"),
    [(0, 0), (-1, 2**64 - 1), (2**64 - 1, 2**64 - 1), (-(2**63), 2**63), (1.7, 1), (True, 1)],
)
def test_any_64_bit_seed(seed, initial):
    autodiff.manual_seed(seed)
    assert autodiff.initial_seed() == initial
    first = autodiff.rand(3).data.copy()
    autodiff.manual_seed(seed)
    assert (autodiff.rand(3).data == first).all()


@pytest.mark.torch
@pytest.mark.parametrize("seed", [-1, 2**64 - 1, -(2**63), 12345])
def test_initial_seed_matches_pytorch(torch, seed):
    assert autodiff.manual_seed(seed).initial_seed() == torch.manual_seed(seed).initial_seed()


@pytest.mark.parametrize("seed", [2**64, -(2**63) - 1])
def test_seeds_outside_64_bits_are_refused(seed):
    with pytest.raises(ValueError, match="64-bit"):
        autodiff.manual_seed(seed)
    with pytest.raises(ValueError):
        autodiff.manual_seed(float("nan"))
