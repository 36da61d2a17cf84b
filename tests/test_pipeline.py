"""The execution pipeline: parameter checking, nbval references kept in sync with sources."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jupytext
import nbformat
import numpy as np
import pytest
import torch

from analysis import env, regen, run

REPO = Path(__file__).resolve().parent.parent
SOURCES = sorted((REPO / "notebooks").glob("*.md"))


@pytest.mark.parametrize(("text", "value"), [
    ("3", 3), ("1e-3", 0.001), ("0.5", 0.5), ("True", True), ("false", False), ("None", None),
    ("[1, 2]", [1, 2]), ("{'n_test': 10}", {"n_test": 10}), ("inf", float("inf")),
    ("full", "full"), ("torchvision", "torchvision"), ("/data/x", "/data/x"),
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


# ---- item 8: every schema parameter from the command line, validated before the kernel -----
def test_schema_parameters_outside_the_cell_are_accepted():
    names = ["profile", "seed", "device", "data_source", "epochs"]
    extra = run.check_params("00_toolkit", names, {"profile": "full", "epochs": 2,
                                                   "batch_size": 64, "eps_l2": [0.0, 1.0]})
    assert extra == {"batch_size": 64, "eps_l2": [0.0, 1.0]}
    over = run.check_params("04_persistence_pathkernel", ["profile", "overrides"],
                            {"overrides": run.parse_value("{'n_test': 100, 'fig24_net': 'C-4'}")})
    assert over == {}


@pytest.mark.parametrize(("chapter", "params", "pattern"), [
    ("00_toolkit", {"eps_linf": ["a"]}, r"^error: parameter 'eps_linf': item 'a' must be"),
    ("00_toolkit", {"cnn_channels": [8, 1.5]}, r"^error: parameter 'cnn_channels': item 1.5"),
    ("00_toolkit", {"batch_size": 0}, r"^error: parameter 'batch_size' = 0 must be >= 1"),
    ("00_toolkit", {"profile": "papers"}, r"^error: unknown profile 'papers'"),
    ("00_toolkit", {"n_trian": 3}, r"^error: unknown parameter\(s\) \['n_trian'\]"),
    ("02_fisher_jacobian", {"lr": float("inf")}, r"^error: parameter 'lr' = inf must be finite"),
    ("02_fisher_jacobian", {"eta_min": 0.01, "eta_max": 0.005},
     r"^error: parameter 'eta_min' = 0.01 must be <= 'eta_max' = 0.005"),
    ("04_persistence_pathkernel", {"fig24_net": "C-X"}, r"^error: parameter 'fig24_net' = 'C-X'"),
    ("04_persistence_pathkernel", {"overrides": {"fig24_net": "nope"}}, r"'fig24_net' = 'nope'"),
    ("04_persistence_pathkernel", {"overrides": "{n_test: 3}"}, r"'overrides' must be a dict"),
    ("04_persistence_pathkernel", {"overrides": {"n_tset": 3}}, r"unknown parameter\(s\)"),
])
def test_bad_values_fail_in_one_line(chapter, params, pattern):
    names = ["profile", "seed", "device", "data_source", "overrides"]
    with pytest.raises(SystemExit, match=pattern) as exc:
        run.check_params(chapter, names, params)
    assert "\n" not in str(exc.value)


def test_resolve_takes_run_parameters_for_its_chapter_only(monkeypatch):
    from analysis import config

    monkeypatch.setenv(config.RUN_PARAMS, '{"chapter": "00_toolkit", "params": {"batch_size": 32}}')
    assert config.resolve("00_toolkit", "smoke").batch_size == 32
    assert config.resolve("00_toolkit", "smoke", batch_size=16).batch_size == 16
    assert config.resolve("01_warwick_rnn", "smoke") == config.resolve("01_warwick_rnn", "smoke")
    monkeypatch.setenv(config.RUN_PARAMS, '{"chapter": "00_toolkit", "params": {"batch_size": 0}}')
    with pytest.raises(ValueError, match="'batch_size' = 0"):
        config.resolve("00_toolkit", "smoke")


# ---- item 7: runs that survive any temp folder, SIGTERM, stale failures -----------------------
def _demo(tmp_path: Path, body: str) -> Path:
    nb = _nb('profile = "smoke"\nn = 1\n')
    nb.cells.append(nbformat.v4.new_code_cell(body))
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python",
                                 "display_name": "Python 3"}
    src = tmp_path / "demo.md"
    jupytext.write(nb, src, fmt="md:myst")
    return src


def _leftovers(*folders: Path) -> list[Path]:
    return [p for f in folders for p in f.iterdir() if p.name.startswith(".") or "tmp" in p.name]


def test_run_with_tmpdir_on_another_filesystem(tmp_path, monkeypatch):
    """$TMPDIR on another file system (tmpfs /tmp): os.replace from it fails with EXDEV."""
    other = tmp_path / "other_fs"
    other.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(other))
    real = os.replace

    def replace(a, b):
        if Path(a).resolve().is_relative_to(other) != Path(b).resolve().is_relative_to(other):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real(a, b)

    monkeypatch.setattr(os, "replace", replace)
    outdir = tmp_path / "out"
    outdir.mkdir()
    out = outdir / "demo.ipynb"
    stale = outdir / "demo.failed.ipynb"
    stale.write_text("{}")
    src = _demo(tmp_path, "print(n * 2)")
    assert run.main([str(src), str(out), "-p", "n", "21"]) == 0
    outputs = [o for c in nbformat.read(out, as_version=4).cells for o in c.get("outputs", [])]
    assert any("42" in o.get("text", "") for o in outputs)
    visible = [c for c in nbformat.read(out, as_version=4).cells
               if "remove-cell" not in c.metadata.get("tags", [])]
    shown = [c for c in visible if "n = " in c.source or run.PARAMS_HEADING in c.source]
    assert len(shown) == 1 and "| n | `21` | command line |" in shown[0].source, shown
    assert not stale.exists(), "a stale .failed.ipynb survived a successful run"
    assert _leftovers(outdir, other) == []
    # the run is logged where ANALYSIS_TIMINGS says (conftest: a temporary file), never in the repo
    log = Path(os.environ["ANALYSIS_TIMINGS"])
    assert run.timings_log() == log and "\tdemo\t" in log.read_text()
    assert not log.resolve().is_relative_to(run.REPO)


def test_failed_run_keeps_partial_and_cleans_up(tmp_path):
    outdir = tmp_path / "out"
    outdir.mkdir()
    src = _demo(tmp_path, "raise RuntimeError('boom')")
    with pytest.raises(Exception, match="boom"):
        run.main([str(src), str(outdir / "demo.ipynb")])
    assert not (outdir / "demo.ipynb").exists() and (outdir / "demo.failed.ipynb").exists()
    assert _leftovers(outdir) == []


def test_sigterm_leaves_no_temporary_folder(tmp_path):
    tmpdir, outdir = tmp_path / "tmpdir", tmp_path / "out"
    tmpdir.mkdir()
    outdir.mkdir()
    src = _demo(tmp_path, "import time\nprint('started', flush=True)\ntime.sleep(120)")
    env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "analysis.run", str(src),
                             str(outdir / "demo.ipynb")], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        t0 = time.time()
        while not any(outdir.iterdir()) and not any(tmpdir.iterdir()):
            assert proc.poll() is None and time.time() - t0 < 120, "the run did not start"
            time.sleep(0.1)
        time.sleep(5)  # let papermill start the kernel
        proc.send_signal(signal.SIGTERM)
        log, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, log
    assert not (outdir / "demo.ipynb").exists()
    assert [p for p in outdir.iterdir() if p.name != "demo.failed.ipynb"] == [], log
    assert list(tmpdir.iterdir()) == [], log


# ---- issue 13: the book shows the parameters once, and plain tables without their index -----
def _executed_demo():
    import pandas as pd

    nb = _nb('profile = "smoke"\nseed = 0\nn_train = None  # override\n')
    injected = nbformat.v4.new_code_cell('# Parameters\nprofile = "full"\n')
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(2, injected)
    plain = nbformat.v4.new_code_cell("t")
    plain.outputs = [nbformat.v4.new_output("execute_result", execution_count=1, data={
        "text/html": pd.DataFrame({"a": [1, 2, 3]}).to_html(), "text/plain": "t"})]
    keyed = nbformat.v4.new_code_cell("k")
    keyed.outputs = [nbformat.v4.new_output("display_data", data={
        "text/html": pd.DataFrame({"v": [1]}, index=["torch"]).to_html()})]
    nb.cells += [plain, keyed]
    return nb


def test_prepare_for_book_shows_the_parameters_once():
    nb = run.prepare_for_book(_executed_demo(), {"profile": "full", "n_epochs": 3})
    nb = run.prepare_for_book(nb, {"profile": "full", "n_epochs": 3})  # idempotent
    visible = [c for c in nb.cells if "remove-cell" not in c.metadata.get("tags", [])]
    shows = [c for c in visible if "profile" in c.source]
    assert len(shows) == 1 and shows[0].cell_type == "markdown"
    md = shows[0].source
    assert run.PARAMS_HEADING in md
    assert "| profile | `'full'` | command line |" in md and "| seed | `0` | notebook |" in md
    assert "| n_train | `None` | notebook |" in md and "| n_epochs | `3` | command line |" in md
    removed = [c for c in nb.cells if "remove-cell" in c.metadata.get("tags", [])]
    assert len(removed) == 2 and nb.cells.index(shows[0]) == 1  # where the parameters were


def test_prepare_for_book_collapses_every_code_cell_but_the_parameters():
    nb = run.prepare_for_book(_executed_demo(), {"profile": "full"})
    nb = run.prepare_for_book(nb, {"profile": "full"})  # idempotent
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tags = cell.metadata["tags"]
        if {"parameters", "injected-parameters"} & set(tags):
            assert "hide-input" not in tags and "remove-cell" in tags
        else:
            assert tags.count("hide-input") == 1
    assert run.book_warnings(nb) == []


def test_prepare_for_book_drops_the_inline_copy_of_a_glued_figure():
    png = {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure size 640x480 with 1 Axes>"}
    glued = nbformat.v4.new_output("display_data", data={
        "application/papermill.record/image/png": "iVBORw0KGgo="},
        metadata={"scrapbook": {"name": "fig-02-x"}})
    cell = nbformat.v4.new_code_cell("plots.to_book('fig-02-x', fig)")
    cell.outputs = [glued, nbformat.v4.new_output("execute_result", data=png, execution_count=1),
                    nbformat.v4.new_output("stream", name="stdout", text="a line\n")]
    plain = nbformat.v4.new_code_cell("fig")
    plain.outputs = [nbformat.v4.new_output("display_data", data=png)]
    nb = _executed_demo()
    nb.cells += [cell, plain]
    run.prepare_for_book(nb, {})
    assert [o.output_type for o in cell.outputs] == ["display_data", "stream"]
    assert len(plain.outputs) == 1  # a figure that is not glued stays


def test_prepare_for_book_hides_only_a_range_index():
    nb = run.prepare_for_book(_executed_demo(), {})
    plain, keyed = (c.outputs[0]["data"]["text/html"] for c in nb.cells[-2:])
    assert 'class="dataframe hide-index"' in plain
    assert 'class="dataframe"' in keyed and "hide-index" not in keyed
    css = (REPO / "book" / "_static" / "book.css").read_text()
    assert "table.dataframe.hide-index tbody th" in css


def test_prepare_for_book_shows_a_figure_once():
    """`fig` as a cell's last expression: the inline backend shows the same PNG twice."""
    nb = _executed_demo()
    png = {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure size 640x480 with 1 Axes>"}
    other = {"image/png": "iVBORw0KGgoAAAA=", "text/plain": "<Figure size 640x480 with 1 Axes>"}
    fig = nbformat.v4.new_code_cell("fig")
    fig.outputs = [nbformat.v4.new_output("execute_result", execution_count=3, data=png),
                   nbformat.v4.new_output("display_data", data=png),
                   nbformat.v4.new_output("display_data", data=other)]
    nb.cells.append(fig)
    run.prepare_for_book(nb, {})
    assert [o["data"]["image/png"] for o in fig.outputs] == [png["image/png"], other["image/png"]]


@pytest.mark.parametrize(("value", "width"), [("1", "None"), (None, "50")])
def test_book_runs_show_whole_table_cells(value, width):
    """analysis.run sets ANALYSIS_BOOK_DISPLAY=1 for the kernel: pandas stops cutting cells."""
    env = {k: v for k, v in os.environ.items() if k != "ANALYSIS_BOOK_DISPLAY"}
    if value is not None:
        env["ANALYSIS_BOOK_DISPLAY"] = value
    code = "import analysis.report, pandas; print(pandas.get_option('display.max_colwidth'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == width


def test_book_warnings_find_figure_and_tag_problems():
    nb = _executed_demo()
    png = {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure size 640x480 with 1 Axes>"}
    fig = nbformat.v4.new_code_cell("fig")
    fig.metadata.update(tags=["hide-input"], mystnb={"figure": {"name": "fig-1", "caption": "c"}})
    fig.outputs = [nbformat.v4.new_output("display_data", data=png)]
    twice = nbformat.v4.new_code_cell("fig2")
    twice.metadata.update(tags=["hide-input"], mystnb={"figure": {"name": "fig-2", "caption": "c"}})
    twice.outputs = [nbformat.v4.new_output("display_data", data=png),
                     nbformat.v4.new_output("execute_result", execution_count=2,
                                            data={"text/plain": "<Figure size 640x480>"})]
    nb.cells += [fig, twice]
    for c in nb.cells[4:6]:  # the two table cells; "x = 1" stays untagged
        c.metadata["tags"] = ["hide-input"]
    assert run.book_warnings(nb) == [
        "code cell 3: no tag hide-input",  # the demo's "x = 1"
        "code cell 7: a '<Figure size ...>' text output (a figure not shown as an image)"]
    twice.outputs = twice.outputs + [nbformat.v4.new_output("display_data", data=png)]
    assert "code cell 7: a figure cell shows 2 images, not one" in run.book_warnings(nb)


def test_book_config_numbers_figures_and_loads_the_css():
    conf = (REPO / "book" / "_config.yml").read_text()
    assert "numfig: true" in conf and "html_css_files: [book.css]" in conf
    assert (REPO / "book" / "_static" / "book.css").is_file()


def test_figures_are_numbered_per_page():
    """book/_ext/numfig_per_page: each page counts its figures from 1, in page order."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "numfig_per_page", REPO / "book" / "_ext" / "numfig_per_page.py")
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    numbers = {"ch1": {"figure": {"a": (1,), "b": (2,)}, "table": {"t": (2,)}},
               "ch2": {"figure": {"c": (4,), "d": (3,)}, "table": {"u": (1,)}}}  # book-wide
    assert ext.renumber(numbers) == ["ch1", "ch2"]
    assert numbers == {"ch1": {"figure": {"a": (1,), "b": (2,)}, "table": {"t": (1,)}},
                       "ch2": {"figure": {"d": (1,), "c": (2,)}, "table": {"u": (1,)}}}
    assert ext.renumber(numbers) == []


def test_deps_rule_lists_imported_modules():
    rule = run.deps_rule(REPO / "notebooks" / "00_toolkit.md", "book/_executed/00_toolkit.ipynb")
    head = rule.splitlines()[0]
    assert head.startswith("book/_executed/00_toolkit.ipynb: ")
    files = head.split(": ", 1)[1].split()
    assert "analysis/attacks/__init__.py" in files and "analysis/profiles/00_toolkit.py" in files
    assert "analysis/profiles/03_peck_bounds.py" not in files
    assert all((REPO / f).is_file() for f in files)


# ---- item 11: a chapter of the table of contents without a record fails the scorecard --------
def test_scorecard_fails_when_a_toc_chapter_has_no_record(tmp_path, capsys):
    from analysis import scorecard

    records, out = tmp_path / "records", tmp_path / "out"
    records.mkdir()
    toc = REPO / "book" / "_toc.yml"
    stems = scorecard.toc_chapters(toc)
    assert stems == [p.stem for p in SOURCES]
    for stem in stems:
        if stem in scorecard.WITHOUT_RECORDS:
            continue
        for kind in ("verdicts", "errata"):
            (records / f"{stem}.{kind}.json").write_text(json.dumps(
                {"chapter": stem, "title": "t", "profile": "smoke", "items": []}))
    assert scorecard.main([str(records), str(out), "--toc", str(toc)]) == 0
    (records / "03_peck_bounds.verdicts.json").unlink()
    assert scorecard.main([str(records), str(out), "--toc", str(toc)]) == 1
    assert "03_peck_bounds.verdicts.json" in capsys.readouterr().err


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


@pytest.mark.parametrize("gpu", [False, True])
def test_device_choice(monkeypatch, gpu):
    """"auto" is CUDA exactly when a GPU is present (both branches, by patching the probe)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    assert env.get_device("cpu").type == "cpu"
    assert env.get_device("auto").type == ("cuda" if gpu else "cpu")
    with pytest.raises(ValueError, match="unknown device"):
        env.get_device("tpu")
    if gpu:
        assert env.get_device("cuda").type == "cuda"
    else:
        with pytest.raises(ValueError, match="no CUDA device"):
            env.get_device("cuda")


def test_provenance_lists_parameters():
    from analysis.config import Param, common_schema, validate

    cfg = validate({**common_schema(), "n": Param(2, kind=int)}, "smoke", {})
    table = env.provenance(cfg, data="demo")
    assert table.loc["param n", "value"] == "2" and table.loc["data", "value"] == "demo"
    assert table.loc["torch", "value"] == torch.__version__


def test_estimate_seconds_scales_the_last_plain_run_by_the_cost_drivers(tmp_path):
    log = tmp_path / "timings.tsv"
    log.write_text("2026-01-01T00:00:00+00:00\t03_peck_bounds\t600.0\t{'profile': 'full'}\t900\n"
                   "2026-01-02T00:00:00+00:00\t03_peck_bounds\t60.0\t{'profile': 'full', "
                   "'n_seeds': 1}\t900\n"  # not a plain run: never a base
                   "2026-01-03T00:00:00+00:00\t00_toolkit\t10.0\t{'profile': 'full'}\t900\n")
    secs, how = run.estimate_seconds("03_peck_bounds", {"profile": "full"}, log)
    assert secs == pytest.approx(600.0) and "full run of 2026-01-01" in how
    # the paper profile: the product of paper ÷ full over the chapter's COST_DRIVERS (training
    # images × LeNet epochs × seeds), read from its profile
    from analysis import config

    full, paper = (config.resolve("03_peck_bounds", p) for p in ("full", "paper"))
    drivers = ("mnist_train", "lenet_epochs", "n_seeds")
    factor = float(np.prod([paper[d] / full[d] for d in drivers]))
    assert factor > 10  # full MNIST at least: the paper sizes are the larger
    secs, _ = run.estimate_seconds("03_peck_bounds", {"profile": "paper"}, log)
    assert secs == pytest.approx(600.0 * factor)
    secs, _ = run.estimate_seconds("03_peck_bounds", {"profile": "full", "n_seeds": 1}, log)
    assert secs == pytest.approx(200.0)
    assert run.estimate_seconds("01_warwick_rnn", {"profile": "full"}, log) is None  # no base
    assert run.estimate_seconds("03_peck_bounds", {}, tmp_path / "missing.tsv") is None
    assert run.estimate_seconds("no_such_chapter", {"profile": "full"}, log) is None
