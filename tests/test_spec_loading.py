"""Reading a grid file from disk: size, encoding, missing files and how problems name it."""

import pytest
from spechelp import VALID

from sweeper.spec import SpecError, load_spec
from sweeper.yamlload import MAX_BYTES

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


def test_a_grid_file_that_is_not_utf8_names_the_line_of_the_bad_byte(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_bytes(b"\xef\xbb\xbfname: t\ndataset: {name: circles}\n# caf\xe9\ngrid: {}\n")
    with pytest.raises(SpecError) as err:
        load_spec(path)
    [problem] = err.value.problems
    assert str(problem) == (f"{path}:3: not UTF-8 text: byte 0xe9 at column 6 (invalid "
                            "continuation byte); save the file as UTF-8")


def test_problems_name_the_file_as_given(tmp_path):
    path = tmp_path / "my-grid.yaml"
    path.write_text(VALID.replace("[0, 0.01]", "[0, -1]"))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(err.value.problems[0]).startswith(f"{path}:4: grid.lambda[1]: got -1")
