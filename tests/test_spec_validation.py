"""Validation of grid.yaml: every problem at once, each with file, path, line, value, allowed."""

import pytest
from spechelp import ARCH, KEEP, NONNEG, POS, VALID, assert_problem, find, spec_error

from core.config import TRAIN_KEYS
from sweeper.schema import TRAIN_RULES
from sweeper.spec import parse_spec

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
    "name, shown, why",
    [
        ('"a/b"', "'a/b'", "it contains '/'"),
        ('"x:y"', "'x:y'", "it contains ':'"),
        ('"../../x"', "'../../x'", "it contains '/'"),
        ('"  pad  "', "'  pad  '", "it starts or ends with a space"),
        ('"tab\\there"', "'tab\\there'", "it contains a control character"),
        ('".."', "'..'", "MLflow refuses '.'"),
        pytest.param("n" * 250, "'nnnn", "it has 250 characters", id="250 characters"),
    ],
)
def test_names_mlflow_would_refuse_later_are_refused_now(name, shown, why):
    problem = assert_problem(spec_error(VALID.replace("name: t", f"name: {name}")), 1, "name",
                             f"got {shown}", "a string of 1 to 249 characters without '/', ':'",
                             "the MLflow experiment and registered model name")
    assert f"registered model name; {why}" in problem.message


@pytest.mark.parametrize("name", ["my sweep-1.0 (v2)", pytest.param("n" * 249, id="249 characters"),
                                  "café", ".hidden"])
def test_names_mlflow_takes_are_accepted(name):
    assert parse_spec(VALID.replace("name: t", f"name: {name!r}")).name == name


@pytest.mark.parametrize(
    "old, new, line, path, fragments",
    [
        ("name: t", 'name: ""', 1, "name", ("got ''", "a string of 1 to 249 characters")),
        ("name: t", "name: 5", 1, "name", ("got 5", "a string of 1 to 249 characters")),
        ("name: t", "name: t\nseed: -1", 2, "seed", ("got -1", "an integer >= 0")),
        ("name: t", "name: t\nseed: 1.5", 2, "seed", ("got 1.5", "an integer >= 0")),
        ("name: t", "name: t\nseeds: 0", 2, "seeds", ("got 0", "an integer in [1, 1000]")),
        ("name: t", "name: t\nseeds: true", 2, "seeds", ("got true", "an integer in [1, 1000]")),
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


@pytest.mark.parametrize(
    "setting, value, path, hint",
    [
        ("learning_rate", "1e-3", "fixed.learning_rate",
         "; YAML reads 1e-3 as text; write 0.001 or 1.0e-3"),
        ("epochs", "1e3", "fixed.epochs", "; YAML reads 1e3 as text; write 1000"),
        ("lambda", '"0.5"', "fixed.lambda", "; quoted, 0.5 is text; write it without quotes"),
        ("keep_prob", "[1.0, 5e-1]", "fixed.keep_prob",
         "; YAML reads 5e-1 as text; write 0.5 or 5.0e-1"),
    ],
)
def test_a_number_yaml_read_as_text_gets_a_hint(setting, value, path, hint):
    text = VALID.replace("  architecture: [4]", f"  architecture: [4]\n  {setting}: {value}")
    problem = assert_problem(spec_error(text), 7, path, f"{setting} must be")
    assert problem.message.endswith(hint)


def test_a_number_in_a_grid_axis_read_as_text_gets_a_hint():
    err = spec_error(VALID.replace("lambda: [0, 0.01]", "learning_rate: [0.1, 1e-3]"))
    problem = assert_problem(err, 4, "grid.learning_rate[1]", "got '1e-3'; learning_rate must be")
    assert problem.message.endswith("; YAML reads 1e-3 as text; write 0.001 or 1.0e-3")


def test_text_that_is_no_number_gets_no_number_hint():
    err = spec_error(VALID.replace("[0, 0.01]", "[0, lots]"))
    assert "YAML" not in assert_problem(err, 4, "grid.lambda[1]", "got 'lots'").message


@pytest.mark.parametrize(
    "old, new, line, path, key",
    [
        ("  lambda: [0, 0.01]", "  lambda: [0, 0.01]\n  1: [2]", 5, "grid.1", "1"),
        ("  architecture: [4]", "  architecture: [4]\n  null: 3", 7, "fixed.null", "null"),
        ("  architecture: [4]", "  architecture: [4]\n  true: 3", 7, "fixed.true", "true"),
        ("name: t", "name: t\n2.5: x", 2, "2.5", "2.5"),
        ("{method: caruana}", "{method: caruana, 7: 1}", 7, "ensemble.7", "7"),
    ],
)
def test_non_string_keys_are_shown_as_keys_not_list_indices(old, new, line, path, key):
    assert_problem(spec_error(VALID.replace(old, new)), line, path, f"unknown key {key};")


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
                   "architecture [20, 3, 4] (3 hidden layers)", KEEP, "(or exclude the pair)")
    assert len(err.problems) == 1


def test_keep_prob_length_clash_can_be_excluded():
    exclude = "exclude:\n  - {keep_prob: [1.0, 0.8], architecture: [20, 3, 4]}\n"
    spec = parse_spec(KEEP_GRID + exclude)
    assert spec.n_trials() == 5


def test_fixed_keep_prob_list_against_fixed_architecture():
    text = VALID.replace("  architecture: [4]", "  architecture: [4]\n  keep_prob: [0.9, 0.9]")
    problem = assert_problem(spec_error(text), 7, "fixed.keep_prob", "got [0.9, 0.9]",
                             "architecture [4]")
    assert "exclude" not in problem.message  # exclude names grid axes: no way out there


def test_fixed_keep_prob_list_against_grid_architectures_can_exclude_the_architecture():
    text = KEEP_GRID.replace("  keep_prob: [0.5, [1.0, 0.8]]\n", "")
    text += "fixed: {keep_prob: [1.0, 0.8]}\n"
    assert_problem(spec_error(text), 5, "fixed.keep_prob", "architecture [20, 3, 4]",
                   "(or exclude that architecture)")


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
