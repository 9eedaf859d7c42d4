"""The benchmark command's own logic (no timing is asserted anywhere)."""

from __future__ import annotations

import argparse

import pytest

from benchmarks.__main__ import thread_settings
from benchmarks.common import Table


def test_thread_settings():
    assert thread_settings("1,default") == [1, None]
    assert thread_settings("2") == [2]
    with pytest.raises(argparse.ArgumentTypeError, match="positive thread counts"):
        thread_settings("0")
    with pytest.raises(argparse.ArgumentTypeError):
        thread_settings("one")


def test_summary_puts_thread_settings_side_by_side(capsys):
    table = Table()
    table.add("epoch", 3.0, 2.0, 1.0, target="<= 1.5x")
    table.threads = "default (autodiff 2, torch 2)"
    table.add("epoch", 2.0, 1.0, None, target="<= 1.5x")
    capsys.readouterr()
    header, _, row = table.summary().splitlines()
    assert header.startswith("| work | autodiff, 1 thread | PyTorch | vs PyTorch | vs NumPy |")
    assert "autodiff, default (autodiff 2, torch 2) threads" in header
    assert row == (
        "| epoch | 3.00 s | 2.00 s | 1.50x | 3.00x | 2.00 s | 1.00 s | 2.00x | — | <= 1.5x |"
    )


def test_using_clock_sets_the_clock_for_a_block_and_restores_it():
    from benchmarks import common

    readings = iter([10.0, 12.5])
    with common.using_clock(lambda: 1.0):
        with common.using_clock(lambda: next(readings)):
            assert (common.now(), common.now()) == (10.0, 12.5)
        assert common.now() == 1.0  # the clock before, back
        with pytest.raises(KeyError), common.using_clock(lambda: 2.0):
            raise KeyError("inside")
        assert common.now() == 1.0  # also after an error
        with pytest.raises(TypeError, match=r"using_clock: expected a function .* got float"):
            common.using_clock(1.0).__enter__()
        assert common.now() == 1.0
