"""The course's experiments, reproduced by the grids in examples/."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from sweeper.cli import main
from sweeper.results import run_trial
from sweeper.spec import load_spec
from sweeper.sweep import plan

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run_example(name: str) -> dict[str, object]:
    the_plan = plan(load_spec(EXAMPLES / name))
    data = next(iter(the_plan.data.values()))
    return {t.label(): run_trial(t, data) for t in the_plan.trials}


@pytest.mark.parametrize("grid", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_every_example_validates(grid):
    result = CliRunner().invoke(main, ["validate", str(EXAMPLES / grid)])
    assert result.exit_code == 0, result.output
    assert "is valid" in result.output


def test_initialization_example_reproduces_the_course():
    results = _run_example("initialization.yaml")
    zeros, random, he = (results[f"initializer={name}"] for name in ("zeros", "random", "he"))
    # zeros: symmetry is never broken; the cost sits at ln 2 and accuracy near chance.
    # (Only the output bias can learn: it moves to the split's class prior, which keeps
    # the cost within a few 1e-4 of ln 2 = 0.6931.)
    costs = zeros.outcome.history["cost"]
    assert max(abs(c - math.log(2)) for c in costs) < 1e-3
    assert 0.4 <= zeros.outcome.train_error <= 0.6
    assert any("identical" in w for w in zeros.outcome.warnings)
    # random * 10: a huge first cost, survived, ending worse than He.
    assert random.status == "finished"
    assert random.outcome.history["cost"][0] > 10
    assert random.outcome.dev_error > he.outcome.dev_error
    # He: a few percent on both sets.
    assert he.status == "finished"
    assert he.outcome.train_error <= 0.05 and he.outcome.dev_error <= 0.05


def test_regularization_example_shrinks_the_train_dev_gap():
    results = _run_example("regularization.yaml")
    gap = {label: r.outcome.dev_error - r.outcome.train_error for label, r in results.items()}
    plain = "lambda=0.0 keep_prob=1.0"
    assert results[plain].outcome.train_error < results[plain].outcome.dev_error - 0.05  # it overfits
    assert gap["lambda=0.7 keep_prob=1.0"] < gap[plain]
    assert gap["lambda=0.0 keep_prob=0.86"] < gap[plain]
