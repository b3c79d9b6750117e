"""Bias / variance diagnosis: one test per verdict."""

from __future__ import annotations

import pytest

from core.diagnosis import RECIPES, diagnose


def test_high_bias():
    d = diagnose(train_error=0.15, dev_error=0.16, baseline_error=0.01)
    assert d.verdict == "high bias"
    assert d.avoidable_bias == pytest.approx(0.14) and d.variance == pytest.approx(0.01)
    assert "bigger network" in d.recipe and "regularization" not in d.recipe


def test_high_variance():
    d = diagnose(train_error=0.01, dev_error=0.11)
    assert d.verdict == "high variance"
    assert d.variance == pytest.approx(0.10)
    assert "more data" in d.recipe and "bigger network" not in d.recipe


def test_high_bias_and_high_variance():
    d = diagnose(train_error=0.15, dev_error=0.30)
    assert d.verdict == "high bias and high variance"
    assert "bigger network" in d.recipe and "regularization (L2, dropout)" in d.recipe


def test_fine_within_tolerance():
    d = diagnose(train_error=0.08, dev_error=0.09, baseline_error=0.07, tolerance=0.02)
    assert d.verdict == "fine"
    assert d.recipe == RECIPES["fine"] == "ship it: bias and variance are both within tolerance"


def test_a_gap_equal_to_the_tolerance_is_not_high():
    assert diagnose(train_error=0.25, dev_error=0.5, tolerance=0.25).verdict == "fine"
    # 0.10 - 0.08 is 0.020000000000000004 in floating point: still equal to the tolerance.
    assert diagnose(train_error=0.08, dev_error=0.10, baseline_error=0.08).verdict == "fine"
    assert diagnose(train_error=0.08, dev_error=0.1001).verdict == "high bias and high variance"


@pytest.mark.parametrize("train, dev", [(float("nan"), float("nan")), (0.1, float("inf")), (float("nan"), 0.2)])
def test_errors_that_are_not_finite_get_no_diagnosis(train, dev):
    d = diagnose(train_error=train, dev_error=dev)
    assert d.verdict == "unknown" and "ship it" not in d.recipe
