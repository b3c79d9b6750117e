"""Validation of grid.yaml: every problem at once, each with file, path, line, value, allowed."""

from pathlib import Path

import pytest

from core.config import TRAIN_KEYS
from sweeper.schema import TRAIN_RULES
from sweeper.spec import Problem, SpecError, load_spec, parse_spec
from sweeper.yamlload import MAX_BYTES


def spec_error(text: str, base_dir: Path | str = ".") -> SpecError:
    with pytest.raises(SpecError) as err:
        parse_spec(text, "grid.yaml", base_dir)
    return err.value


def find(err: SpecError, path: str) -> Problem:
    found = [p for p in err.problems if p.path == path]
    assert found, f"no problem at {path!r} in:\n{err}"
    return found[0]


def assert_problem(err: SpecError, line: int | None, path: str, *fragments: str) -> Problem:
    problem = find(err, path)
    text = str(problem)
    assert problem.line == line, text
    assert text.startswith(f"grid.yaml:{line}: {path}: " if line else f"grid.yaml: {path}: "), text
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in {text!r}"
    return problem


# A setting under ``fixed`` on line 6; the grid has one architecture.
FIXED = """\
name: t
dataset: {{name: circles}}
grid:
  architecture: [[4, 2]]
fixed:
  {key}: {value}
"""
# A candidate of a grid axis on line 6, index 1 (index 0 is valid).
GRID = """\
name: t
dataset: {{name: circles}}
fixed:
  {other}
grid:
  {key}: [{good}, {bad}]
"""

KEEP = "a number in [0.001, 1], one for all hidden layers or a list with one per hidden layer"
ARCH = "a non-empty list of integers >= 1"
NONNEG = "a finite number >= 0"
POS = "a finite number > 0"

BAD_SETTINGS = [
    ("keep_prob", "0", "0", KEEP),
    ("keep_prob", "0.0005", "0.0005", KEEP),
    ("keep_prob", "1.5", "1.5", KEEP),
    ("keep_prob", ".nan", "nan", KEEP),
    ("keep_prob", '"0.5"', "'0.5'", KEEP),
    ("keep_prob", "true", "true", KEEP),
    ("keep_prob", "[1.0, 1.5]", "[1.0, 1.5]", KEEP),
    ("keep_prob", "[]", "[]", KEEP),
    ("lambda", "-0.1", "-0.1", NONNEG),
    ("lambda", ".inf", "inf", NONNEG),
    ("lambda", "false", "false", NONNEG),
    ("l1", "-1", "-1", NONNEG),
    ("initializer", "hee", "'hee'", "one of 'zeros', 'random', 'xavier', 'glorot', 'he'"),
    ("activation", "softmax", "'softmax'", "one of 'relu', 'leaky_relu', 'tanh', 'sigmoid'"),
    ("optimizer", "sgd", "'sgd'", "one of 'gd', 'momentum', 'rmsprop', 'adam'"),
    ("dtype", "float16", "'float16'", "one of 'float32', 'float64'"),
    ("learning_rate", "0", "0", POS),
    ("learning_rate", "-0.01", "-0.01", POS),
    ("learning_rate", '"1e-3"', "'1e-3'", POS),
    ("lr_decay", "-1", "-1", NONNEG),
    ("beta1", "1", "1", "a number in [0, 1)"),
    ("beta2", "-0.1", "-0.1", "a number in [0, 1)"),
    ("epsilon", "0", "0", POS),
    ("epochs", "0", "0", "an integer >= 1"),
    ("epochs", "2.5", "2.5", "an integer >= 1"),
    ("epochs", "true", "true", "an integer >= 1"),
    ("batch_size", "0", "0", "an integer >= 1 or null"),
    ("batch_size", "full", "'full'", "an integer >= 1 or null"),
    ("init_scale", "0", "0", POS),
    ("divergence_factor", "1", "1", "a finite number > 1"),
    ("normalize", '"yes"', "'yes'", "true or false"),
    ("normalize", "1", "1", "true or false"),
    ("early_stopping", "true", "true", "a mapping {patience: an integer >= 1"),
    ("early_stopping", "5", "5", "or null or false"),
]


@pytest.mark.parametrize("key, value, shown, allowed", BAD_SETTINGS)
def test_bad_fixed_setting_names_file_path_line_value_and_allowed(key, value, shown, allowed):
    err = spec_error(FIXED.format(key=key, value=value))
    assert_problem(err, 6, f"fixed.{key}", f"got {shown}; {key} must be ", allowed)
    assert len(err.problems) == 1


@pytest.mark.parametrize("key, value, shown, allowed", BAD_SETTINGS)
def test_bad_grid_candidate_is_placed_at_its_index(key, value, shown, allowed):
    good = {"keep_prob": "0.5", "lambda": "0", "l1": "0", "initializer": "he", "activation": "relu",
            "optimizer": "adam", "dtype": "float32", "learning_rate": "0.1", "lr_decay": "0",
            "beta1": "0.9", "beta2": "0.99", "epsilon": "1e-8", "epochs": "3", "batch_size": "8",
            "init_scale": "0.1", "divergence_factor": "10", "normalize": "true",
            "early_stopping": "null"}[key]
    text = GRID.format(other="architecture: [4, 2]", key=key, good=good, bad=value)
    err = spec_error(text)
    assert_problem(err, 6, f"grid.{key}[1]", f"got {shown}; {key} must be ", allowed)


BAD_ARCHITECTURES = [
    ("0", "0"), ("[0]", "[0]"), ("[-1]", "[-1]"), ("[2.5]", "[2.5]"), ("[true]", "[true]"),
    ('["64"]', "['64']"), ("[]", "[]"), ("[10, 0]", "[10, 0]"), ("null", "null"),
]


@pytest.mark.parametrize("value, shown", BAD_ARCHITECTURES)
def test_bad_fixed_architecture(value, shown):
    err = spec_error(VALID.replace("architecture: [4]", f"architecture: {value}"))
    assert_problem(err, 6, "fixed.architecture", f"got {shown}; architecture must be {ARCH}")


@pytest.mark.parametrize("value, shown", BAD_ARCHITECTURES[1:8])
def test_bad_grid_architecture(value, shown):
    text = GRID.format(other="lambda: 0", key="architecture", good="[4, 2]", bad=value)
    assert_problem(spec_error(text), 6, "grid.architecture[1]", f"got {shown}", ARCH)


@pytest.mark.parametrize(
    "value, path, shown, allowed",
    [
        ("{patience: 0}", "fixed.early_stopping.patience", "got 0", "an integer >= 1"),
        ("{patience: 3, min_delta: -1}", "fixed.early_stopping.min_delta", "got -1", NONNEG),
        ("{min_delta: 0.1}", "fixed.early_stopping.patience", "required key patience is missing",
         "an integer >= 1"),
        ("{patince: 3}", "fixed.early_stopping.patince", "unknown key 'patince'",
         "did you mean patience?"),
    ],
)
def test_bad_early_stopping_mapping(value, path, shown, allowed):
    err = spec_error(FIXED.format(key="early_stopping", value=value))
    assert_problem(err, 6, path, shown, allowed)


def test_every_training_key_has_a_rule():
    user_keys = {k.split(".")[0] for k in TRAIN_KEYS}
    assert set(TRAIN_RULES) == user_keys


# ----------------------------------------------------------------------------- unknown keys

VALID = """\
name: t
dataset: {name: circles}
grid:
  lambda: [0, 0.01]
fixed:
  architecture: [4]
ensemble: {method: caruana}
resources: {cpus_per_trial: 1}
"""


def test_unknown_grid_key_suggests_the_closest():
    text = VALID.replace("  lambda: [0, 0.01]", "  keep_prb: [1.0, 0.8]")
    problem = assert_problem(spec_error(text), 4, "grid.keep_prb", "unknown key 'keep_prb'",
                             "did you mean keep_prob?")
    expected = "grid.yaml:4: grid.keep_prb: unknown key 'keep_prb'; did you mean keep_prob?"
    assert str(problem) == expected


@pytest.mark.parametrize(
    "old, new, line, path, suggestion",
    [
        ("name: t", "name: t\nsed: 1", 2, "sed", "did you mean seed?"),
        ("  architecture: [4]", "  architecture: [4]\n  learnig_rate: 0.1", 7, "fixed.learnig_rate",
         "did you mean learning_rate?"),
        ("{method: caruana}", "{method: caruana, szie: 5}", 7, "ensemble.szie",
         "did you mean size?"),
        ("{cpus_per_trial: 1}", "{cpu_per_trial: 1}", 8, "resources.cpu_per_trial",
         "did you mean cpus_per_trial?"),
        ("{name: circles}", "{name: circles, noize: 0.1}", 2, "dataset.noize",
         "did you mean noise?"),
        ("  architecture: [4]", "  architecture: [4]\n  zzz: 1", 7, "fixed.zzz",
         "allowed: architecture, activation"),
    ],
)
def test_unknown_keys_anywhere_are_errors_with_a_suggestion(old, new, line, path, suggestion):
    err = spec_error(VALID.replace(old, new))
    assert_problem(err, line, path, "unknown key", suggestion)


def test_dotted_early_stopping_keys_are_unknown():
    text = VALID.replace("  architecture: [4]", "  architecture: [4]\n  early_stopping.patience: 3")
    assert_problem(spec_error(text), 7, "fixed.early_stopping.patience", "unknown key")


# ----------------------------------------------------------------------------- top level


@pytest.mark.parametrize(
    "old, new, line, path, fragments",
    [
        ("name: t", 'name: ""', 1, "name", ("got ''", "a non-empty string")),
        ("name: t", "name: 5", 1, "name", ("got 5", "a non-empty string")),
        ("name: t", "name: t\nseed: -1", 2, "seed", ("got -1", "an integer >= 0")),
        ("name: t", "name: t\nseed: 1.5", 2, "seed", ("got 1.5", "an integer >= 0")),
        ("name: t", "name: t\nseeds: 0", 2, "seeds", ("got 0", "an integer >= 1")),
        ("name: t", "name: t\nseeds: true", 2, "seeds", ("got true", "an integer >= 1")),
        ("name: t", "name: t\nbaseline_error: 1.5", 2, "baseline_error", ("got 1.5", "[0, 1]")),
        ("name: t", "name: t\nbaseline_error: -0.1", 2, "baseline_error", ("got -0.1", "[0, 1]")),
        ("name: t", "name: t\nexclude: {lambda: 0}", 2, "exclude",
         ("got {lambda: 0}", "a list of mappings")),
        ("name: t", "name: t\nfixed2: 3", 2, "fixed2",
         ("unknown key 'fixed2'", "did you mean fixed?")),
    ],
)
def test_bad_top_level_values(old, new, line, path, fragments):
    assert_problem(spec_error(VALID.replace(old, new)), line, path, *fragments)


def test_missing_required_keys_are_each_reported():
    err = spec_error("seed: 1\n")
    assert {p.path for p in err.problems} >= {"name", "dataset", "grid", "fixed.architecture"}
    assert "required key name is missing" in str(find(err, "name"))


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "got nothing (the file is empty)"),
        ("# just a comment\n", "got nothing (the file is empty)"),
        ("- a\n- b\n", "got a list"),
        ("hello\n", "got 'hello'"),
    ],
)
def test_empty_file_or_root_not_a_mapping(text, fragment):
    err = spec_error(text)
    [problem] = err.problems
    assert fragment in str(problem)
    assert "a grid file must be a mapping with keys name" in str(problem)
    assert str(problem).startswith("grid.yaml")


def test_empty_grid_is_an_error():
    err = spec_error(VALID.replace("  lambda: [0, 0.01]\n", "").replace("grid:\n", "grid: {}\n"))
    assert_problem(err, 3, "grid", "got an empty grid", "at least one training setting")


def test_null_grid_is_an_error():
    err = spec_error(VALID.replace("  lambda: [0, 0.01]\n", ""))
    assert_problem(err, 3, "grid", "got null; grid must be a mapping")


@pytest.mark.parametrize("value, shown", [("0.01", "0.01"), ("[]", "[]"), ("{a: 1}", "{a: 1}")])
def test_grid_axis_must_be_a_non_empty_list(value, shown):
    err = spec_error(VALID.replace("lambda: [0, 0.01]", f"lambda: {value}"))
    assert_problem(err, 4, "grid.lambda", f"got {shown}; a grid axis must be a non-empty list",
                   NONNEG, "one value belongs under fixed")


def test_flat_architecture_in_grid_gets_a_hint():
    text = VALID.replace("  architecture: [4]\n", "").replace("lambda: [0, 0.01]",
                                                              "architecture: [10, 5]")
    assert_problem(spec_error(text), 4, "grid.architecture", "got [10, 5]", "write [[10, 5]]")


def test_duplicate_grid_candidates_are_an_error():
    err = spec_error(VALID.replace("lambda: [0, 0.01]", "lambda: [0, 0.01, 0.0]"))
    assert_problem(err, 4, "grid.lambda[2]", "got 0.0 again (first at lambda[0])", "must differ")


def test_key_in_grid_and_fixed_names_both_lines():
    text = VALID.replace("  architecture: [4]", "  architecture: [4]\n  lambda: 0.1")
    assert_problem(spec_error(text), 7, "fixed.lambda", "grid (line 4)", "fixed (line 7)",
                   "never both")


def test_architecture_is_required():
    err = spec_error(VALID.replace("  architecture: [4]\n", "  epochs: 3\n"))
    assert "architecture is required, in grid or fixed" in str(find(err, "fixed.architecture"))


# ----------------------------------------------------------------------------- keep_prob lists

KEEP_GRID = """\
name: t
dataset: {name: circles}
grid:
  keep_prob: [0.5, [1.0, 0.8]]
  architecture: [[10, 5], [20, 3, 4], [8, 8]]
"""


def test_keep_prob_list_length_must_match_every_architecture():
    err = spec_error(KEEP_GRID)
    assert_problem(err, 4, "grid.keep_prob[1]", "got [1.0, 0.8] (2 values)",
                   "architecture [20, 3, 4] (3 hidden layers)", KEEP)
    assert len(err.problems) == 1


def test_keep_prob_length_clash_can_be_excluded():
    exclude = "exclude:\n  - {keep_prob: [1.0, 0.8], architecture: [20, 3, 4]}\n"
    spec = parse_spec(KEEP_GRID + exclude)
    assert spec.n_trials() == 5


def test_fixed_keep_prob_list_against_fixed_architecture():
    text = VALID.replace("  architecture: [4]", "  architecture: [4]\n  keep_prob: [0.9, 0.9]")
    assert_problem(spec_error(text), 7, "fixed.keep_prob", "got [0.9, 0.9]", "architecture [4]")


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


# ----------------------------------------------------------------------------- dataset, split


@pytest.mark.parametrize(
    "dataset, path, fragments",
    [
        ("{n_samples: 10}", "dataset", ("got keys n_samples", "exactly one of name")),
        ("{name: circles, path: d.csv, target: y}", "dataset",
         ("got name and path", "exactly one of")),
        ("{name: circels}", "dataset.name", ("got 'circels'", "one of 'circles', 'moons'",
                                             "did you mean circles?")),
        ("{name: circles, target: y}", "dataset.target", ("unknown key 'target'",)),
        ("{name: iris, n_samples: 10}", "dataset.n_samples", ("unknown key 'n_samples'",)),
        ("{name: circles, n_samples: {a: 1}}", "dataset.n_samples", ("got {a: 1}",)),
        ("{path: data.csv}", "dataset.target", ("required key target is missing",)),
        ("{path: data.txt, target: y}", "dataset.path", ("got 'data.txt'", "a .csv or .npz file")),
        ("{path: 5, target: y}", "dataset.path", ("got 5", "a non-empty string")),
        ("{train: a.csv, dev: b.csv, target: y}", "dataset.test",
         ("required key test is missing",)),
        ("[circles]", "dataset", ("got ['circles']", "dataset must be a mapping")),
    ],
)
def test_bad_dataset(dataset, path, fragments, tmp_path):
    for name in ("a.csv", "b.csv", "data.csv"):
        (tmp_path / name).write_text("x,y\n1,0\n")
    err = spec_error(VALID.replace("{name: circles}", dataset), tmp_path)
    assert_problem(err, 2, path, *fragments)


def test_missing_data_file_names_the_resolved_path(tmp_path):
    err = spec_error(VALID.replace("{name: circles}", "{path: sub/data.csv, target: y}"), tmp_path)
    resolved = (tmp_path / "sub" / "data.csv").resolve()
    assert_problem(err, 2, "dataset.path", "got 'sub/data.csv'", f"no file {resolved}",
                   "an existing .csv or .npz file")


def test_data_paths_resolve_against_the_grid_files_folder(tmp_path, monkeypatch):
    (tmp_path / "grids").mkdir()
    (tmp_path / "data").mkdir()
    for part in ("train", "dev", "test"):
        (tmp_path / "data" / f"{part}.csv").write_text("x,y\n1,0\n")
    grid = tmp_path / "grids" / "grid.yaml"
    grid.write_text(VALID.replace(
        "{name: circles}",
        "{train: ../data/train.csv, dev: ../data/dev.csv, test: ../data/test.csv, target: y}"))
    monkeypatch.chdir("/")
    spec = load_spec(grid)
    assert spec.dataset["train"] == str((tmp_path / "data" / "train.csv").resolve())
    assert spec.dataset["target"] == "y"
    assert spec.path == grid.resolve()


@pytest.mark.parametrize(
    "split, path, fragments",
    [
        ("{train: .7, dev: .2, test: .2}", "split", ("got {train: 0.7, dev: 0.2, test: 0.2}",
                                                     "(sum 1.1)", "must sum to 1")),
        ("{train: 1, dev: 0, test: 0}", "split.train", ("got 1", "a number in (0, 1)")),
        ("{train: .8, dev: .2}", "split.test", ("required key test is missing",)),
        ("{train: .8, dev: .1, tset: .1}", "split.tset", ("unknown key", "did you mean test?")),
        ("random", "split", ("got 'random'", "one of 'auto'")),
    ],
)
def test_bad_split(split, path, fragments):
    err = spec_error(VALID + f"split: {split}\n")
    assert_problem(err, 9, path, *fragments)


def test_split_does_not_apply_to_three_files(tmp_path):
    for part in ("train", "dev", "test"):
        (tmp_path / f"{part}.csv").write_text("x,y\n1,0\n")
    files = "{train: train.csv, dev: dev.csv, test: test.csv, target: y}"
    text = VALID.replace("{name: circles}", files)
    err = spec_error(text + "split: {train: .6, dev: .2, test: .2}\n", tmp_path)
    assert_problem(err, 9, "split", "split must be auto")


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
        ("resources: {gpus_per_trial: -1}", "resources.gpus_per_trial", ("got -1", NONNEG)),
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


# ----------------------------------------------------------------------------- all at once


MANY = """\
name: ""
dataset: {name: circles}
grid:
  lambda: [0, -1]
  keep_prb: [1.0]
  keep_prob: [1.0, "0.5", 1.5]
  architecture: [[10, 5], [0]]
fixed:
  lambda: 0.1
  optimizer: sgd
resources: {cpus_per_trial: 0}
"""


def test_a_file_with_several_problems_reports_them_all_in_one_error_sorted_by_line():
    err = spec_error(MANY)
    paths = [p.path for p in err.problems]
    assert paths == ["name", "grid.lambda[1]", "grid.keep_prb", "grid.keep_prob[1]",
                     "grid.keep_prob[2]", "grid.architecture[1]", "fixed.lambda",
                     "fixed.optimizer", "resources.cpus_per_trial"]
    text = str(err)
    lines = text.splitlines()
    assert lines[0] == "grid.yaml: 9 problems:"
    assert len(lines) == 10 and all(line.strip().startswith("grid.yaml:") for line in lines[1:])


def test_yaml_problems_become_spec_problems():
    err = spec_error("name: a\nname: b\ngrid: !!python/object/apply:os.system ['true']\n")
    lines = [p.line for p in err.problems]
    assert 2 in lines and 3 in lines
    # Reported together with the schema's own problems, not instead of them.
    assert any("dataset" in str(p) for p in err.problems)
    assert sum(p.path == "grid" for p in err.problems) == 1
    assert str(err).startswith(f"grid.yaml: {len(err.problems)} problems:")


# ----------------------------------------------------------------------------- load_spec


def test_load_spec_refuses_an_oversized_file(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text("name: x\n# " + "x" * MAX_BYTES + "\n")
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert "the limit is 1,048,576 bytes" in str(err.value)
    assert err.value.problems[0].file == str(path)


def test_load_spec_reports_a_missing_file(tmp_path):
    with pytest.raises(SpecError) as err:
        load_spec(tmp_path / "nope.yaml")
    assert "cannot read" in str(err.value) and "nope.yaml" in str(err.value)


def test_problems_name_the_file_as_given(tmp_path):
    path = tmp_path / "my-grid.yaml"
    path.write_text(VALID.replace("[0, 0.01]", "[0, -1]"))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(err.value.problems[0]).startswith(f"{path}:4: grid.lambda[1]: got -1")
