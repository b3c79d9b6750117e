"""Expansion of a valid spec into trials: order, exclude, repeats, seeds and digests."""

import dataclasses
import pickle
import re

import numpy as np
import pytest

from core.config import DEFAULTS, TrainConfig
from sweeper.spec import (
    SweepSpec,
    data_seed,
    derive_seed,
    expand,
    load_spec,
    parse_spec,
    trial_digest,
)

DESIGN_EXAMPLE = """\
name: circles-init               # MLflow experiment name
seed: 1                          # the one root seed; everything derives from it
seeds: 1                         # repeats of every grid point with different derived seeds
baseline_error: 0.0              # human-level or Bayes error, for the bias/variance diagnosis
dataset:                         # a built-in generator or file(s)
  name: circles                  # circles | moons | flower | spiral | blobs | digits | ...
  n_samples: 400
  noise: 0.05
split: auto                      # 60/20/20 under 1M examples, 98/1/1 above
grid:                            # the cartesian product of these
  lambda: [0, 0.01, 0.7]         # L2 strength
  keep_prob: [1.0, 0.86, [1.0, 0.8]]   # one for all hidden layers, or one per hidden layer
  initializer: [zeros, random, xavier, glorot, he]
  architecture: [[10, 5], [20, 3]]     # hidden layer sizes; input and output come from the data
fixed:                           # settings shared by every trial; a key is in grid or fixed
  activation: relu
  optimizer: adam                # gd | momentum | rmsprop | adam
  learning_rate: 0.01
  epochs: 300
  batch_size: 64                 # null means full batch
  early_stopping: {patience: 30}
exclude: []                      # points to leave out, as partial mappings
ensemble: {method: caruana, size: 25, candidates: 10}    # or top_k, or none
resources: {cpus_per_trial: 1, gpus_per_trial: 0}
"""

SMALL = """\
name: small
seed: 7
seeds: {seeds}
dataset: {{name: moons}}
grid:
  lambda: {lambdas}
  architecture: [[4], [8, 2]]
fixed:
  keep_prob: 0.9
{extra}"""


def small(lambdas="[0, 0.1]", seeds=1, extra="") -> SweepSpec:
    return parse_spec(SMALL.format(lambdas=lambdas, seeds=seeds, extra=extra))


def by_point(trials):
    return {(t.point, t.repeat): t for t in trials}


def test_the_design_example_parses_and_expands(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text(DESIGN_EXAMPLE)
    spec = load_spec(path)
    assert spec.name == "circles-init" and spec.seed == 1 and spec.split == "auto"
    assert dict(spec.dataset) == {"name": "circles", "n_samples": 400, "noise": 0.05}
    assert [k for k, _ in spec.grid] == ["lambda", "keep_prob", "initializer", "architecture"]
    assert dict(spec.grid)["keep_prob"] == (1.0, 0.86, (1.0, 0.8))
    assert spec.ensemble.size == 25 and spec.ensemble.candidates == 10
    assert spec.warnings == () and spec.text == DESIGN_EXAMPLE
    trials = expand(spec, "fp")
    assert len(trials) == spec.n_trials() == 3 * 3 * 5 * 2
    config = trials[0].config
    assert config.patience == 30 and config.min_delta == 0.0
    assert (config.learning_rate, config.epochs, config.batch_size) == (0.01, 300, 64)
    assert len({t.digest for t in trials}) == len(trials)


def test_grid_order_is_the_files_with_the_last_axis_fastest():
    trials = expand(small("[0, 0.1]"), "fp")
    assert [t.point for t in trials] == [
        (("lambda", 0.0), ("architecture", (4,))),
        (("lambda", 0.0), ("architecture", (8, 2))),
        (("lambda", 0.1), ("architecture", (4,))),
        (("lambda", 0.1), ("architecture", (8, 2))),
    ]


def test_expansion_is_deterministic():
    first, second = expand(small(seeds=2), "fp"), expand(small(seeds=2), "fp")
    assert first == second


def test_exclude_leaves_out_matching_points():
    spec = small("[0, 0.1, 0.2]", extra="exclude:\n  - {lambda: 0.1, architecture: [8, 2]}\n"
                                         "  - {lambda: 0.2}\n")
    points = [dict(t.point) for t in expand(spec, "fp")]
    assert len(points) == spec.n_trials() == 3
    assert {"lambda": 0.1, "architecture": (8, 2)} not in points
    assert all(p["lambda"] != 0.2 for p in points)


def test_seeds_repeat_every_point_with_one_derived_seed_per_repeat():
    spec = small(seeds=3)
    trials = expand(spec, "fp")
    assert len(trials) == spec.n_trials() == 4 * 3
    assert [t.repeat for t in trials] == [0] * 4 + [1] * 4 + [2] * 4
    for t in trials:
        assert t.seed == derive_seed(7, t.repeat)
    assert len({t.seed for t in trials}) == 3
    assert len({t.digest for t in trials}) == 12


def test_derived_seeds_do_not_depend_on_grid_position():
    forward = expand(small("[0, 0.1, 0.2]", seeds=2), "fp")
    backward = expand(small("[0.2, 0.1, 0]", seeds=2), "fp")
    assert forward[0].point != backward[0].point
    assert by_point(forward).keys() == by_point(backward).keys()
    for key, trial in by_point(forward).items():
        other = by_point(backward)[key]
        assert (trial.seed, trial.digest) == (other.seed, other.digest)


def test_growing_the_grid_keeps_every_existing_digest():
    before = {t.digest for t in expand(small("[0, 0.1]", seeds=2), "fp")}
    grown = {t.digest for t in expand(small("[0, 0.05, 0.1, 0.7]", seeds=3), "fp")}
    assert before < grown and len(grown) == 4 * 2 * 3


def test_writing_out_a_default_or_adding_an_axis_through_it_keeps_old_digests():
    before = {t.digest for t in expand(small(), "fp")}
    written_out = small(extra="  optimizer: adam\n")  # the default, now under fixed
    assert {t.digest for t in expand(written_out, "fp")} == before
    with_axis = parse_spec(SMALL.format(lambdas="[0, 0.1]", seeds=1, extra="")
                           .replace("grid:\n", "grid:\n  optimizer: [gd, adam]\n"))
    after = {t.digest for t in expand(with_axis, "fp")}
    assert before < after and len(after) == 8


def test_defaults_apply_where_grid_and_fixed_say_nothing():
    trial = expand(small(), "fp")[0]
    params = trial.config.to_params()
    for key, default in DEFAULTS.items():
        if key not in ("lambda", "keep_prob"):
            assert params[key] == default, key
    assert params["keep_prob"] == 0.9 and params["early_stopping.patience"] is None


def test_early_stopping_axis_flattens_to_dotted_settings():
    spec = small(extra="  early_stopping: {patience: 5, min_delta: 0.01}\n")
    assert expand(spec, "fp")[0].config.patience == 5
    text = SMALL.format(lambdas="[0]", seeds=1, extra="").replace(
        "grid:\n", "grid:\n  early_stopping: [null, false, {patience: 3}]\n")
    with pytest.raises(Exception, match="again"):  # null and false both mean off
        parse_spec(text)
    spec = parse_spec(text.replace("null, false", "null"))
    configs = [t.config for t in expand(spec, "fp")]
    assert [(c.patience, c.min_delta) for c in configs[::2]] == [(None, 0.0), (3, 0.0)]


def test_params_and_label_speak_yaml():
    trial = expand(small(seeds=2), "fp")[-1]
    params = trial.params()
    assert params["lambda"] == 0.1 and params["architecture"] == [8, 2]
    assert params["repeat"] == 1 and params["seed"] == derive_seed(7, 1)
    assert trial.label() == "lambda=0.1 architecture=[8, 2]"
    spec = parse_spec(DESIGN_EXAMPLE)
    assert expand(spec, "fp")[-1].label() == (
        "lambda=0.7 keep_prob=[1.0, 0.8] initializer=he architecture=[20, 3]"
    )


# ----------------------------------------------------------------------------- seeds, digests


def test_derive_seed_uses_seed_sequence_of_root_and_repeat():
    expected = np.random.SeedSequence(7, spawn_key=(1, 2)).generate_state(1, dtype=np.uint64)[0]
    assert derive_seed(7, 2) == int(expected) and isinstance(derive_seed(7, 2), int)
    assert derive_seed(7, 0) != derive_seed(7, 1) != derive_seed(8, 1)
    data = np.random.SeedSequence(7, spawn_key=(0,)).generate_state(1, dtype=np.uint64)[0]
    assert data_seed(7) == int(data)
    assert data_seed(7) != derive_seed(7, 0)


def test_digest_is_sha256_hex_and_stable_across_versions():
    config = TrainConfig(architecture=(10, 5), keep_prob=(1.0, 0.8))
    digest = trial_digest(config, "abc", 42)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    # Golden values: a change here changes every stored trial's identity.
    assert digest == "ea928eefb2551e7eb5514cbe69ac3942304223d8baf5ac57199579fd9e01e654"
    full_batch = dataclasses.replace(config, lambd=0.01, batch_size=None)
    assert trial_digest(full_batch, "abc", 42) == (
        "cfa5b7b0a999943e60f8d855241d9762aff502ebb3413ad944fcdfa2041a9a2b"
    )


def test_minibatch_penalties_got_a_new_identity_when_their_m_became_the_training_sets():
    # Before, a minibatch step divided lambda by its own size; the digest such a trial had
    # then must not find its stored result now.
    config = TrainConfig(architecture=(10, 5), lambd=0.01, keep_prob=(1.0, 0.8))
    assert config.batch_size == 64
    old = "3f2f593e419853d8698d64a1a98f2094f7a06966d9b7698011a39c6f1a818c23"
    assert trial_digest(config, "abc", 42) != old


def test_digest_ignores_how_equal_values_are_written():
    a = TrainConfig(architecture=[10, 5], lambd=0, keep_prob=[1, 0.8], learning_rate=0.1)
    b = TrainConfig(architecture=(10, 5), lambd=0.0, keep_prob=(1.0, 0.80), learning_rate=0.10)
    assert trial_digest(a, "fp", 1) == trial_digest(b, "fp", 1)
    assert trial_digest(a, "fp", np.uint64(1)) == trial_digest(a, "fp", 1)


def test_digest_changes_with_config_data_or_seed():
    config = TrainConfig(architecture=(4,))
    base = trial_digest(config, "fp", 1)
    assert trial_digest(dataclasses.replace(config, lambd=0.1), "fp", 1) != base
    assert trial_digest(config, "other", 1) != base
    assert trial_digest(config, "fp", 2) != base


def test_written_lambda_0_and_0_0_are_the_same_trial():
    a = {t.digest for t in expand(small("[0, 0.1]"), "fp")}
    b = {t.digest for t in expand(small("[0.0, 0.10]"), "fp")}
    assert a == b


def test_specs_and_trials_are_frozen_and_picklable():
    spec = parse_spec(DESIGN_EXAMPLE)
    trial = expand(spec, "fp")[0]
    assert pickle.loads(pickle.dumps(spec)) == spec
    assert pickle.loads(pickle.dumps(trial)) == trial
    assert hash(spec) == hash(pickle.loads(pickle.dumps(spec)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.seed = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.dataset["name"] = "moons"  # type: ignore[index]


def test_n_trials_counts_after_exclude_and_times_seeds():
    spec = parse_spec(SMALL.format(seeds=3, lambdas="[0, 0.1, 0.2]",
                                   extra="exclude:\n  - {lambda: 0.1, architecture: [4]}\n"))
    assert spec.n_points() == len(list(spec.points())) == 5
    assert spec.n_trials() == 15 == len(expand(spec, "fp"))


@pytest.mark.timeout(20)
def test_n_trials_of_a_huge_grid_is_counted_without_building_its_points():
    # 10^9 points: walking them would take hours; only the named axis is walked.
    axis = tuple(float(i) for i in range(1000))
    spec = dataclasses.replace(
        parse_spec(SMALL.format(seeds=1000, lambdas="[0]", extra="")),
        grid=(("lambda", axis), ("l1", axis), ("init_scale", axis)),
        exclude=((("l1", 0.0),), (("l1", 1.0),)),
    )
    assert spec.n_trials() == 1000 * 1000 * 998 * 1000
