"""The mutation tool (analysis.mutants): exact-once application, clear stale errors, isolation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from analysis import mutants

FAKE = mutants.Mutation("fake", "pkg/mod.py", "return 2 * x", "return x", "halve it",
                        ("tests/test_mod.py",))


def _tree(root: Path, text: str) -> Path:
    (root / "pkg").mkdir(parents=True, exist_ok=True)
    path = root / "pkg" / "mod.py"
    path.write_text(text)
    return path


def test_applies_exactly_once_to_the_named_file(tmp_path):
    path = _tree(tmp_path, "def f(x):\n    return 2 * x\n")
    other = tmp_path / "pkg" / "other.py"
    other.write_text("return 2 * x\n")
    assert mutants.apply(FAKE, tmp_path) == path
    assert path.read_text() == "def f(x):\n    return x\n"
    assert other.read_text() == "return 2 * x\n"  # only the named file changes


@pytest.mark.parametrize("text, count", [("def f(x):\n    return 3 * x\n", 0),
                                          ("return 2 * x\nreturn 2 * x\n", 2)])
def test_missing_or_repeated_snippet_is_a_clear_error(tmp_path, text, count):
    path = _tree(tmp_path, text)
    with pytest.raises(mutants.StaleMutation, match=f"'fake'.*occurs {count} times in pkg/mod.py"):
        mutants.apply(FAKE, tmp_path)
    assert path.read_text() == text  # nothing written


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(mutants.StaleMutation, match="pkg/mod.py does not exist"):
        mutants.apply(FAKE, tmp_path)


def test_every_mutation_matches_the_current_tree_once():
    ids = [m.id for m in mutants.MUTATIONS]
    assert len(ids) == len(set(ids))
    for m in mutants.MUTATIONS:
        text = (mutants.REPO / m.file).read_text(encoding="utf-8")
        assert text.count(m.old) == 1, f"{m.id}: stale snippet in {m.file}"
        assert m.old != m.new
        for t in m.tests:
            assert (mutants.REPO / t).is_file(), f"{m.id}: no test file {t}"
        for s in m.notebooks:
            assert (mutants.REPO / mutants.NOTEBOOKS / f"{s}.ipynb").is_file(), s


def test_scratch_copy_is_what_python_imports(tmp_path):
    repo = tmp_path / "repo"
    (repo / "analysis").mkdir(parents=True)
    (repo / "analysis" / "__init__.py").write_text("")
    (repo / ".gitignore").write_text("ignored/\n")
    (repo / "ignored").mkdir()
    (repo / "ignored" / "big.bin").write_text("x")
    (repo / "untracked.txt").write_text("u")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "analysis", ".gitignore"], cwd=repo, check=True)
    dest = mutants.scratch_copy(repo, tmp_path / "scratch")
    assert (dest / "analysis" / "__init__.py").is_file()
    assert (dest / "untracked.txt").is_file()  # untracked but not ignored: copied
    assert not (dest / "ignored").exists()
    # the editable install of the real repository must not win over PYTHONPATH
    assert mutants.check_import(dest, sys.executable) == (dest / "analysis" / "__init__.py")


def test_first_failure_parses_unit_and_nbval_summaries():
    out = ("....F\n=== short test summary info ===\n"
           "FAILED tests/test_x.py::test_a[0.5] - AssertionError: assert 1 == 2\n"
           "FAILED tests/test_x.py::test_b - ValueError\n")
    assert mutants.first_failure(out) == "tests/test_x.py::test_a[0.5]"
    nb = "FAILED tests/notebooks/03_peck_bounds.ipynb::Cell 12\n"
    assert mutants.first_failure(nb) == "tests/notebooks/03_peck_bounds.ipynb::Cell 12"
    assert mutants.first_failure("3 passed in 1.0s\n") is None


def test_json_keeps_the_latest_outcome_of_each_mutation(tmp_path):
    path = tmp_path / "m.json"
    first, second = mutants.MUTATIONS[0].id, mutants.MUTATIONS[1].id
    mutants.write_json(path, [mutants.Outcome(second, "b", "SURVIVED"),
                              mutants.Outcome(first, "a", "INVALID")])
    mutants.write_json(path, [mutants.Outcome(first, "a", "killed", killer="tests/t.py::x")])
    rows = json.loads(path.read_text())["mutations"]
    assert [(r["id"], r["status"]) for r in rows] == [(first, "killed"), (second, "SURVIVED")]
