"""The execution pipeline: parameter checking, nbval references kept in sync with sources."""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import pytest
import torch

from analysis import env, regen, run

REPO = Path(__file__).resolve().parent.parent
SOURCES = sorted((REPO / "notebooks").glob("*.md"))


@pytest.mark.parametrize(("text", "value"), [
    ("3", 3), ("1e-3", 0.001), ("0.5", 0.5), ("True", True), ("false", False), ("None", None),
    ("[1, 2]", [1, 2]), ("full", "full"), ("torchvision", "torchvision"), ("/data/x", "/data/x"),
])
def test_parse_value(text, value):
    assert run.parse_value(text) == value and type(run.parse_value(text)) is type(value)


def test_parse_args_rejects_malformed():
    with pytest.raises(SystemExit, match="expected '-p NAME VALUE'"):
        run.parse_args(["a.md", "b.ipynb", "-p", "only_name"])
    src, out, params = run.parse_args(["a.md", "b.ipynb", "-p", "n", "4", "-p", "profile", "full"])
    assert params == {"n": 4, "profile": "full"}


def _nb(param_src: str):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(param_src)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), cell, nbformat.v4.new_code_cell("x = 1")]
    return nb


def test_parameter_names_and_unknown_parameter(tmp_path):
    nb = _nb('profile = "smoke"\nseed = 0\nn_train = None  # override\n')
    assert run.parameter_names(nb) == ["profile", "seed", "n_train"]
    src = tmp_path / "demo.md"
    jupytext.write(nb, src, fmt="md:myst")
    with pytest.raises(SystemExit, match=r"unknown parameter\(s\) \['n_trian'\]"):
        run.main([str(src), str(tmp_path / "o.ipynb"), "-p", "n_trian", "5"])
    with pytest.raises(SystemExit, match="no cell tagged 'parameters'"):
        run.parameter_names(nbformat.v4.new_notebook())


def test_strip_keeps_only_checked_outputs():
    nb = nbformat.v4.new_notebook()
    keep = nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(1)", execution_count=3)
    keep.outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    drop = nbformat.v4.new_code_cell("print(2)", execution_count=4)
    drop.outputs = [nbformat.v4.new_output("stream", name="stdout", text="2\n")]
    drop.metadata["execution"] = {"iopub.execute_input": "2026-01-01"}
    nb.cells = [keep, drop]
    nb.metadata["papermill"] = {"duration": 1.0}
    regen.strip(nb)
    assert keep.outputs[0]["text"] == "1\n" and drop.outputs == []
    assert keep.execution_count == 1 and drop.execution_count is None and "execution" not in drop.metadata
    assert "papermill" not in nb.metadata


def _code(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("src", SOURCES, ids=[p.stem for p in SOURCES])
def test_reference_matches_source(src):
    """The nbval reference must be the current source's conversion (`make regen` rewrites it)."""
    ref = REPO / "tests" / "notebooks" / f"{src.stem}.ipynb"
    assert ref.exists(), f"{ref.name} is missing: run `make regen NB={src.stem}`"
    assert _code(nbformat.read(ref, as_version=4)) == _code(jupytext.read(src)), (
        f"{ref.name} is stale: run `make regen NB={src.stem}`")


@pytest.mark.parametrize("src", SOURCES, ids=[p.stem for p in SOURCES])
def test_notebook_shape(src):
    """One H1 title, a literal-only parameters cell with profile="smoke", a provenance cell."""
    nb = jupytext.read(src)
    heads = [line for c in nb.cells if c.cell_type == "markdown"
             for line in c.source.splitlines() if line.startswith("# ")]
    assert len(heads) == 1, heads
    names = run.parameter_names(nb)
    assert names[:1] == ["profile"] or "profile" in names
    pcell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assert 'profile = "smoke"' in pcell.source
    assert any(c.source.startswith("# NBVAL_IGNORE_OUTPUT") and "provenance" in c.source
               for c in nb.cells if c.cell_type == "code")
    assert any("# NBVAL_CHECK_OUTPUT" in c.source for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("src", SOURCES, ids=[p.stem for p in SOURCES])
def test_notebook_in_toc(src):
    assert f"_executed/{src.stem}" in (REPO / "book" / "_toc.yml").read_text()


def test_seed_everything_is_deterministic():
    env.seed_everything(3)
    a = torch.randn(5)
    env.seed_everything(3)
    assert torch.equal(a, torch.randn(5))
    with pytest.raises(ValueError, match="non-negative int"):
        env.seed_everything(-1)


def test_device_choice():
    assert env.get_device("cpu").type == "cpu"
    assert env.get_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError, match="unknown device"):
        env.get_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            env.get_device("cuda")


def test_provenance_lists_parameters():
    from analysis.config import Param, common_schema, validate

    cfg = validate({**common_schema(), "n": Param(2, kind=int)}, "smoke", {})
    table = env.provenance(cfg, data="demo")
    assert table.loc["param n", "value"] == "2" and table.loc["data", "value"] == "demo"
    assert table.loc["torch", "value"] == torch.__version__
