"""The guarded YAML reader: lines, duplicates, tags, limits, syntax errors."""

import time

import pytest

from sweeper.yamlload import (
    MAX_BYTES,
    Key,
    Problem,
    YamlError,
    format_path,
    load_yaml,
    number_text_hint,
)


def read_error(text: str, **limits) -> YamlError:
    with pytest.raises(YamlError) as err:
        load_yaml(text, "grid.yaml", **limits)
    return err.value


def test_reads_plain_yaml_and_records_the_line_of_every_key_and_item():
    text = "name: x\ngrid:\n  keep_prob:\n    - 1.0\n    - [1.0, 0.8]\n  lambda: [0, 0.01]\n"
    data, lines = load_yaml(text, "grid.yaml")
    assert data == {"name": "x", "grid": {"keep_prob": [1.0, [1.0, 0.8]], "lambda": [0, 0.01]}}
    assert lines[("name",)] == 1
    assert lines[("grid",)] == 2
    assert lines[("grid", "keep_prob")] == 3
    assert lines[("grid", "keep_prob", 0)] == 4
    assert lines[("grid", "keep_prob", 1)] == 5
    assert lines[("grid", "keep_prob", 1, 1)] == 5
    assert lines[("grid", "lambda", 1)] == 6


def test_an_empty_document_reads_as_none():
    assert load_yaml("", "grid.yaml") == (None, {})
    assert load_yaml("# only a comment\n", "grid.yaml") == (None, {})


def test_duplicate_key_is_an_error_naming_both_lines():
    err = read_error("name: a\nseed: 1\nname: b\n")
    [problem] = err.problems
    assert problem == Problem("grid.yaml", "name", 3, problem.message)
    assert "duplicate key 'name'" in problem.message
    assert "line 1" in problem.message and "line 3" in problem.message
    assert str(problem).startswith("grid.yaml:3: name: duplicate key")


def test_duplicate_keys_in_nested_mappings_are_all_reported():
    err = read_error("grid:\n  lambda: [0]\n  lambda: [1]\nfixed:\n  epochs: 1\n  epochs: 2\n")
    assert [(p.path, p.line) for p in err.problems] == [("grid.lambda", 3), ("fixed.epochs", 6)]


def test_billion_laughs_is_refused_quickly():
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    started = time.perf_counter()
    err = read_error("\n".join(lines))
    assert time.perf_counter() - started < 1.0
    assert "more than 10,000 values" in str(err) and "alias" in str(err)


def test_node_limit_is_adjustable():
    read_error("[" + ", ".join(["1"] * 50) + "]", max_nodes=20)
    data, _ = load_yaml("[" + ", ".join(["1"] * 50) + "]", "grid.yaml", max_nodes=100)
    assert len(data) == 50


def test_an_alias_that_contains_itself_is_refused():
    err = read_error("a: &a [*a]\n")
    assert "alias contains itself" in str(err)


def test_deep_nesting_is_refused():
    err = read_error("[" * 200 + "]" * 200)
    assert "nest deeper than" in str(err)


def test_python_object_apply_is_refused_and_never_executed(tmp_path, monkeypatch):
    import os

    ran = []
    monkeypatch.setattr(os, "system", lambda cmd: ran.append(cmd) or 0)
    marker = tmp_path / "pwned"
    text = f"name: x\nfixed: !!python/object/apply:os.system ['touch {marker}']\n"
    err = read_error(text)
    assert not ran and not marker.exists()
    [problem] = err.problems
    assert (problem.path, problem.line) == ("fixed", 2)
    assert "!!python/object/apply:os.system" in problem.message
    assert "only plain YAML values" in problem.message


@pytest.mark.parametrize(
    "text, tag",
    [
        ("a: !!python/name:os.system\n", "!!python/name:os.system"),
        ("a: !!set {x, y}\n", "!!set"),
        ("a: !!binary aGVsbG8=\n", "!!binary"),
        ("a: !custom 1\n", "!custom"),
    ],
)
def test_unsafe_or_unknown_tags_are_refused_with_their_line(text, tag):
    [problem] = read_error(text).problems
    assert problem.line == 1 and problem.path == "a" and tag in problem.message


def test_every_problem_of_a_document_is_reported():
    err = read_error("a: 1\na: 2\nb: !!set {x}\nc: !foo 3\n")
    assert [p.line for p in err.problems] == [2, 3, 4]


def test_syntax_error_names_line_and_column():
    [problem] = read_error("name: x\ngrid:\n  lambda: [0, 0.01\nfixed: {}\n").problems
    assert problem.line is not None and problem.line >= 3
    assert "YAML syntax error" in problem.message and "column" in problem.message
    assert str(problem).startswith(f"grid.yaml:{problem.line}: YAML syntax error")


def test_bad_indentation_is_a_syntax_error():
    [problem] = read_error("grid:\n  lambda: [0]\n    keep_prob: [1]\n").problems
    assert problem.line == 3 and "YAML syntax error" in problem.message


def test_several_documents_are_refused():
    assert "single document" in str(read_error("a: 1\n---\nb: 2\n"))


def test_oversized_text_is_refused_before_parsing(monkeypatch):
    import yaml

    def no_parsing(*args, **kwargs):
        raise AssertionError("parsed an oversized file")

    monkeypatch.setattr(yaml.SafeLoader, "get_single_node", no_parsing)
    [problem] = read_error("a: " + "x" * MAX_BYTES).problems
    assert "the limit is 1,048,576 bytes" in problem.message
    assert "bytes" in str(read_error("a: 1234567890", max_bytes=10))


def test_anchors_aliases_and_merge_keys_work_and_own_keys_win():
    text = "base: &b {lambda: 0.1, epochs: 5}\nfixed:\n  <<: *b\n  epochs: 9\n"
    data, lines = load_yaml(text, "grid.yaml")
    assert data["fixed"] == {"lambda": 0.1, "epochs": 9}
    assert lines[("fixed", "epochs")] == 4 and lines[("fixed", "lambda")] == 1


def test_an_integer_too_long_to_convert_is_a_problem_not_a_crash():
    [problem] = read_error("seed: 1" + "0" * 5000 + "\n").problems
    assert problem.path == "seed" and "cannot read it as !!int" in problem.message


def test_non_scalar_keys_are_refused():
    [problem] = read_error("? [a, b]\n: 1\n").problems
    assert "keys must be plain strings" in problem.message


def test_non_string_keys_are_not_taken_for_list_indices():
    data, lines = load_yaml("grid: {1: [2]}\nfixed:\n  null: 3\n  true: [4]\n", "grid.yaml")
    assert data == {"grid": {1: [2]}, "fixed": {None: 3, True: [4]}}
    assert lines[("grid", Key(1))] == 1 and lines[("grid", Key(1), 0)] == 1
    assert lines[("fixed", Key(None))] == 3 and lines[("fixed", Key(True), 0)] == 4
    assert format_path(("grid", Key(1), 0)) == "grid.1[0]"
    assert format_path(("fixed", Key(None))) == "fixed.null"
    assert format_path((Key(True), "a")) == "true.a"


def test_a_duplicate_non_string_key_is_reported_at_its_yaml_path():
    [problem] = read_error("fixed:\n  null: 1\n  ~: 2\n").problems
    assert str(problem).startswith("grid.yaml:3: fixed.null: duplicate key null")


@pytest.mark.parametrize(
    "text, integer, hint",
    [
        ("1e-3", False, "YAML reads 1e-3 as text; write 0.001 or 1.0e-3"),
        ("1e-8", False, "YAML reads 1e-8 as text; write 1.0e-8"),
        ("2E5", False, "YAML reads 2E5 as text; write 200000.0 or 2.0e+5"),
        ("1e3", True, "YAML reads 1e3 as text; write 1000"),
        ("0.5", False, "quoted, 0.5 is text; write it without quotes"),
        ("12", True, "quoted, 12 is text; write it without quotes"),
        ("abc", False, ""),
        ("nan", False, ""),
        ("", False, ""),
    ],
)
def test_number_text_hint_says_how_yaml_spells_the_number(text, integer, hint):
    assert number_text_hint(text, integer) == hint
