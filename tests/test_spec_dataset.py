"""Validation of a grid's dataset and split sections, built-in parameters included."""

import pytest
from spechelp import VALID, assert_problem, spec_error

from core.datasets import PARAM_RULES
from sweeper.schema import DATASET_RULES
from sweeper.spec import load_spec, parse_spec

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


# ----------------------------------------------------------------------------- built-in parameters

BUILTIN = """\
name: x
dataset:
  name: {name}
{params}
grid: {{lambda: [-1]}}
fixed: {{architecture: [3], epochs: 5}}
"""


def test_builtin_parameters_are_reported_with_the_rest_each_on_its_line():
    params = "  n_samples: 200.5\n  noise: -1\n  factor: 2\n  colour: red"
    err = spec_error(BUILTIN.format(name="circles", params=params))
    assert [str(p) for p in err.problems] == [
        ("grid.yaml:4: dataset.n_samples: got 200.5; n_samples must be an integer in "
        "[2, 10,000,000]"),
        "grid.yaml:5: dataset.noise: got -1; noise must be a finite number >= 0",
        "grid.yaml:6: dataset.factor: got 2; factor must be a number in (0, 1)",
        "grid.yaml:7: dataset.colour: unknown key 'colour'; circles takes n_samples, noise, factor",
        "grid.yaml:8: grid.lambda[0]: got -1; lambda must be a finite number >= 0",
    ]


@pytest.mark.parametrize(
    "name, params, line, path, fragments",
    [
        ("circles", "  n_samples: 100000000000", 4, "dataset.n_samples",
         ("got 100000000000; n_samples must be an integer in [2, 10,000,000]",)),
        ("blobs", "  n_samples: true", 4, "dataset.n_samples", ("got true;",)),
        ("blobs", "  center_box: [1, -1]", 4, "dataset.center_box",
         ("got [1, -1]; center_box must be [low, high]: two finite numbers with low < high",)),
        ("blobs", "  n_features: 0", 4, "dataset.n_features",
         ("got 0; n_features must be an integer in [1, 10000]",)),
        ("blobs", "  n_samples: 100000\n  n_features: 1000", 4, "dataset.n_samples",
         ("got 100,000; n_samples x n_features must be at most 20,000,000",
          "(here 100,000 x 1,000 = 100,000,000)")),
        ("spiral", "  noise: 0.1\n  classes: 500", 5, "dataset.classes",
         ("got 500; n_samples must be >= classes (here 300 points for 500 classes)",)),
        ("moons", "  noise: 1e-2", 4, "dataset.noise",
         ("got '1e-2'", "YAML reads 1e-2 as text; write 0.01 or 1.0e-2")),
        ("digits", "  n_samples: 3", 4, "dataset.n_samples",
         ("unknown key 'n_samples'; digits takes no parameters, only name",)),
    ],
)
def test_bad_builtin_parameters(name, params, line, path, fragments):
    err = spec_error(BUILTIN.format(name=name, params=params).replace("[-1]", "[0]"))
    problem = assert_problem(err, line, path, *fragments)
    assert "did you mean" not in problem.message
    assert len(err.problems) == 1


def test_builtin_parameters_within_their_bounds_are_accepted():
    params = "  n_samples: 10000000\n  classes: 4\n  n_features: 2\n  center_box: [-1, 1.5]"
    spec = parse_spec(BUILTIN.format(name="blobs", params=params).replace("[-1]", "[0]"))
    assert spec.dataset["center_box"] == (-1, 1.5)


def test_the_schema_and_the_core_agree_on_every_parameter():
    values = [None, True, -1, 0, 0.5, 1, 2, 2.5, 1000, 10_000, 10**7, 10**7 + 1, [0, 1],
              [1, 0], "x"]
    assert set(DATASET_RULES) == set(PARAM_RULES)
    for key, ours in DATASET_RULES.items():
        theirs = PARAM_RULES[key]
        assert [ours.accepts(v) for v in values] == [theirs.accepts(v) for v in values], key
