"""Validation of a grid's exclude, ensemble, resources and tracking sections, and its size."""

import pytest
from spechelp import POS, VALID, assert_problem, spec_error

from sweeper.spec import parse_spec

# ----------------------------------------------------------------------------- exclude


def test_exclude_key_must_be_a_grid_axis():
    err = spec_error(VALID + "exclude:\n  - {lambda: 0, optimizr: gd}\n")
    assert_problem(err, 10, "exclude[0].optimizr", "not a grid axis: 'optimizr'", "allowed: lambda")


def test_exclude_value_must_be_among_the_axis_values():
    err = spec_error(VALID + "exclude:\n  - {lambda: 0.5}\n")
    assert_problem(err, 10, "exclude[0].lambda", "got 0.5", "among grid.lambda: 0.0, 0.01")


def test_empty_exclude_entry_is_an_error():
    assert_problem(spec_error(VALID + "exclude:\n  - {}\n"), 10, "exclude[0]", "got {}")


def test_exclude_leaving_no_points_is_an_error():
    err = spec_error(VALID + "exclude:\n  - {lambda: 0}\n  - {lambda: 0.01}\n")
    assert_problem(err, 9, "exclude", "leave none of the 2 grid points")


def test_each_exclude_entry_is_checked_on_its_own_line():
    err = spec_error(VALID + "exclude:\n  - 5\n  - {lambda: 1}\n  - [lambda]\n")
    assert_problem(err, 10, "exclude[0]", "got 5; an exclude entry must be a mapping of grid "
                   "axes to values, such as {lambda: ...}")
    assert_problem(err, 11, "exclude[1].lambda", "got 1", "among grid.lambda: 0.0, 0.01")
    assert_problem(err, 12, "exclude[2]", "got ['lambda']; an exclude entry must be a mapping")
    assert len(err.problems) == 3


def test_exclude_suggests_only_valid_grid_axes():
    text = VALID.replace("  lambda: [0, 0.01]", "  lambda: [0, 0.01]\n  bogus: [1, 2]")
    err = spec_error(text + "exclude:\n  - {zzz: 1}\n  - {bogus: 1}\n")
    assert_problem(err, 5, "grid.bogus", "unknown key 'bogus'")
    problem = assert_problem(err, 11, "exclude[0].zzz", "not a grid axis: 'zzz'; allowed: lambda")
    assert "bogus" not in problem.message
    assert len(err.problems) == 2  # bogus in exclude adds nothing to grid.bogus's problem


# ----------------------------------------------------------------------------- size


def test_seeds_are_bounded():
    assert parse_spec(VALID + "seeds: 1000\n").n_trials() == 2000
    assert_problem(spec_error(VALID + "seeds: 1000000000\n"), 9, "seeds",
                   "got 1000000000; seeds must be an integer in [1, 1000]")


def test_trials_are_bounded_by_points_times_seeds():
    axis = ", ".join(str(i) for i in range(1001))
    err = spec_error(VALID.replace("[0, 0.01]", f"[{axis}]") + "seeds: 1000\n")
    [problem] = err.problems
    assert str(problem) == ("grid.yaml:9: seeds: got 1,000 seeds x 1,001 grid points = "
                            "1,001,000 trials; a sweep may have at most 1,000,000 trials")


# ----------------------------------------------------------------------------- ensemble, resources


@pytest.mark.parametrize(
    "section, path, fragments",
    [
        ("ensemble: {method: bagging}", "ensemble.method",
         ("got 'bagging'", "'caruana', 'top_k', 'none'")),
        ("ensemble: {size: 0}", "ensemble.size", ("got 0", "an integer >= 1")),
        ("ensemble: {candidates: 0}", "ensemble.candidates", ("got 0", "an integer >= 1")),
        ("ensemble: {init: 20, candidates: 10}", "ensemble.init",
         ("got 20", "init must be <= candidates (10)")),
        ("ensemble: {k: 2.5}", "ensemble.k", ("got 2.5", "an integer >= 1")),
        ("resources: {cpus_per_trial: 0}", "resources.cpus_per_trial", ("got 0", POS)),
        ("resources: {gpus_per_trial: -1}", "resources.gpus_per_trial",
         ("got -1", "a number in [0, 1] or a whole number >= 1")),
        ("resources: {timeout_s: 0}", "resources.timeout_s", ("got 0", "> 0 or null")),
        ("resources: {max_retries: -1}", "resources.max_retries", ("got -1", "an integer >= 0")),
        ("resources: {allow_cpu_fallback: 'yes'}", "resources.allow_cpu_fallback",
         ("got 'yes'", "true or false")),
        ("tracking: {history_points: 1}", "tracking.history_points", ("got 1", "an integer >= 2 or null")),
        ("tracking: {history_point: 20}", "tracking.history_point", ("did you mean history_points?",)),
    ],
)
def test_bad_ensemble_or_resources(section, path, fragments):
    sections = "ensemble: {method: caruana}\nresources: {cpus_per_trial: 1}\n"
    text = VALID.replace(sections, section + "\n")
    assert_problem(spec_error(text), 7, path, *fragments)


def test_history_points_default_to_the_store_and_can_be_set():
    assert parse_spec(VALID).history_points is None
    assert parse_spec(VALID + "tracking: {history_points: 1000}\n").history_points == 1000


def test_fractional_gpus_and_a_timeout_are_accepted():
    spec = parse_spec(VALID.replace("{cpus_per_trial: 1}", "{gpus_per_trial: 0.25, timeout_s: 60}"))
    assert spec.resources.gpus_per_trial == 0.25 and spec.resources.timeout_s == 60


def test_ensemble_asking_for_more_than_the_sweep_has_warns():
    spec = parse_spec(VALID.replace("{method: caruana}", "{method: top_k, k: 12, candidates: 3}"))
    assert any("ensemble.k" in w and "k=12" in w for w in spec.warnings)
    assert any("ensemble.candidates" in w and "2 trials" in w for w in spec.warnings)
    assert all(w.startswith("grid.yaml:7: ensemble.") for w in spec.warnings)


def test_default_ensemble_over_enough_trials_gives_no_warnings():
    ten = "[0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]"
    assert parse_spec(VALID.replace("[0, 0.01]", ten)).warnings == ()


@pytest.mark.parametrize("section", ["ensemble", "resources", "tracking"])
def test_a_null_section_means_its_defaults(section):
    sections = "ensemble: {method: caruana}\nresources: {cpus_per_trial: 1}\n"
    spec = parse_spec(VALID.replace(sections, f"{section}: null\n"))
    assert spec.ensemble.method == "caruana" and spec.ensemble.size == 25
    assert spec.resources.cpus_per_trial == 1.0 and spec.resources.gpus_per_trial == 0.0
    assert spec.history_points is None


@pytest.mark.parametrize("gpus", ["0", "0.5", "1", "2", "4.0"])
def test_gpus_per_trial_may_be_a_fraction_of_one_or_whole_gpus(gpus):
    spec = parse_spec(VALID.replace("{cpus_per_trial: 1}", f"{{gpus_per_trial: {gpus}}}"))
    assert spec.resources.gpus_per_trial == float(gpus)


@pytest.mark.parametrize("gpus", ["1.5", "2.25", "-0.5"])
def test_gpus_per_trial_ray_would_refuse_are_refused(gpus):
    err = spec_error(VALID.replace("{cpus_per_trial: 1}", f"{{gpus_per_trial: {gpus}}}"))
    assert_problem(err, 8, "resources.gpus_per_trial", f"got {gpus}; gpus_per_trial must be a "
                   "number in [0, 1] or a whole number >= 1")
