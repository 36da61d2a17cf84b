"""Execute one chapter notebook with papermill, after checking its parameters.

Usage::

    python -m analysis.run notebooks/NN_slug.md OUT.ipynb [-p NAME VALUE ...]
    python -m analysis.run --deps notebooks/NN_slug.md TARGET   # a make rule: what it imports

The MyST source is converted with jupytext. Values are parsed as int, float, bool, ``None`` or
a ``[...]``/``(...)``/``{...}`` literal, else kept as text. Every ``-p NAME VALUE`` is checked
before the kernel starts: ``NAME`` must be a name of the notebook's ``parameters`` cell or a
parameter of the chapter's schema (:mod:`analysis.profiles`), and all values, with the
profile, are validated by :func:`analysis.config.validate`, so a bad value is one line naming
the parameter (exit status 2). Names that the parameters cell does not hold reach the chapter's
:func:`analysis.config.resolve` through ``$ANALYSIS_PARAMS``; chapter 04's ``overrides`` dict
is checked the same way.

The notebook is executed into a temporary folder *next to* ``OUT`` (so the final
``os.replace`` never crosses file systems, whatever ``$TMPDIR`` is), which is removed on
success, failure, Ctrl-C and SIGTERM. ``OUT`` is replaced only on success, and a stale
``OUT.failed.ipynb`` is then removed; a failed run leaves ``OUT.failed.ipynb`` for inspection
and exits non-zero. The wall time and the peak memory of the kernel (:func:`peak_rss_mib`) are
appended to ``.cache/timings.tsv`` (tab-separated: UTC time, chapter, seconds, parameters, peak
MiB; ``make bench`` reads it).

Progress: a terminal shows papermill's bar over the notebook's cells; the kernel runs with
``ANALYSIS_PROGRESS=0`` (unless it is set already) so the executed notebook, and the book page
made from it, carry no tqdm bars.
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def parse_value(text: str) -> Any:
    """``"3"`` -> 3, ``"1e-3"`` -> 0.001, ``"True"`` -> True, ``"None"`` -> None,
    ``"[1, 2]"`` -> [1, 2], ``"{'a': 1}"`` -> {'a': 1}; anything else stays a string."""
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    if text in ("True", "true"):
        return True
    if text in ("False", "false"):
        return False
    if text in ("None", "null"):
        return None
    if text.startswith(("[", "(", "{")):
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError) as err:
            raise SystemExit(f"error: cannot parse {text!r} as a literal ({err})") from None
    return text


def parse_args(argv: list[str]) -> tuple[Path, Path, dict]:
    if len(argv) < 2 or argv[0] in ("-h", "--help"):
        raise SystemExit(__doc__)
    src, out, rest = Path(argv[0]), Path(argv[1]), argv[2:]
    params: dict = {}
    while rest:
        if rest[0] != "-p" or len(rest) < 3:
            raise SystemExit(f"error: expected '-p NAME VALUE', got {' '.join(rest[:3])!r}")
        params[rest[1]] = parse_value(rest[2])
        rest = rest[3:]
    return src, out, params


def parameter_names(nb) -> list[str]:
    """Names assigned in the cell tagged ``parameters``."""
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            tree = ast.parse(cell.source)
            return [t.id for node in tree.body if isinstance(node, ast.Assign)
                    for t in node.targets if isinstance(t, ast.Name)]
    raise SystemExit("error: the notebook has no cell tagged 'parameters'")


def check_params(chapter: str, names: list[str], params: dict[str, Any]) -> dict[str, Any]:
    """Validate ``params`` for ``chapter`` before anything runs.

    Args:
        chapter: the notebook's stem (its schema is ``analysis.profiles.<chapter>``, if any).
        names: the names of the notebook's parameters cell.
        params: the ``-p`` values.

    Returns:
        The schema parameters that the parameters cell does not name (for ``$ANALYSIS_PARAMS``).

    Raises:
        SystemExit: one line naming the bad parameter.
    """
    from analysis import config

    try:
        schema = config.schema_for(chapter)
    except ValueError:
        schema = None  # not a chapter with a schema: only the cell's names
    valid = set(names) | set(schema or {})
    unknown = sorted(set(params) - valid)
    if unknown:
        raise SystemExit(f"error: unknown parameter(s) {unknown} for {chapter}; "
                         f"its parameters are {sorted(valid)}")
    extra = {k: v for k, v in params.items() if k not in names}
    if schema is None:
        return extra
    overrides = params.get("overrides")
    if "overrides" in params and overrides is not None and not isinstance(overrides, dict):
        raise SystemExit(f"error: parameter 'overrides' must be a dict such as "
                         f"\"{{'n_test': 100}}\", got {type(overrides).__name__} {overrides!r}")
    merged = {**{k: v for k, v in params.items() if k in schema}, **(overrides or {})}
    profile = params.get("profile", "smoke")
    try:
        config.validate(schema, profile, merged, chapter=chapter)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    return extra


def deps_rule(src: Path, target: str) -> str:
    """A make rule: ``target`` (and this rule's file) depend on the ``analysis`` modules that the
    notebook ``src`` imports, transitively, and on the chapter's profile."""
    import jupytext

    from analysis import cache

    nb = jupytext.read(src)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    roots = set(cache._imports_of_text("__main__", False, text))
    roots.add(f"analysis.profiles.{src.stem}")
    roots |= {"analysis.config", "analysis.run", "analysis.report", "analysis.env"}
    files = sorted({str(cache.module_file(m).relative_to(REPO))
                    for m in cache.module_closure(roots) if cache.module_file(m) is not None})
    return f"{target}: {' '.join(files)}\n" + "".join(f"{f}:\n" for f in files)


PARAMS_HEADING = "Parameters of this run"
_RANGE_INDEX_TABLE = re.compile(r'<table border="1" class="dataframe">(.*?)</table>', re.S)


def _cell_defaults(source: str) -> dict[str, Any]:
    """The literal values the ``parameters`` cell assigns (a non-literal is kept as its text)."""
    out: dict[str, Any] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                value = ast.unparse(node.value)
            for t in node.targets:
                if isinstance(t, ast.Name):
                    out[t.id] = value
    return out


def parameters_markdown(defaults: dict[str, Any], params: dict[str, Any]) -> str:
    """The one display of a run's parameters: a markdown table of name, value and source.

    Args:
        defaults: the ``parameters`` cell's values.
        params: the ``-p`` values of this run (they win; a name outside the cell goes to the
            chapter's schema through ``$ANALYSIS_PARAMS``).

    Returns:
        MyST markdown: a heading-free paragraph and a ``| parameter | value | set by |`` table.
    """
    def cell(v: Any) -> str:
        return f"`{v!r}`".replace("|", "\\|")

    rows = ["| parameter | value | set by |", "|---|---|---|"]
    for name, value in defaults.items():
        rows.append(f"| {name} | {cell(params.get(name, value))} | "
                    f"{'command line' if name in params else 'notebook'} |")
    rows += [f"| {name} | {cell(v)} | command line |" for name, v in params.items()
             if name not in defaults]
    return (f"**{PARAMS_HEADING}** (the profile expands into the sizes the provenance table "
            "lists; rerun with `make chapter NB=<stem> PARAMS='-p name value'`):\n\n"
            + "\n".join(rows) + "\n")


def _hide_range_index(html: str) -> str:
    """Add the class ``hide-index`` to pandas tables whose index is 0, 1, 2, ... (a RangeIndex,
    which says nothing); book/_static/book.css then hides that column."""
    def fix(m: re.Match) -> str:
        body = m.group(1)
        labels = re.findall(r"<tr>\s*<th>([^<]*)</th>", body.split("<tbody>", 1)[-1])
        if labels and labels == [str(i) for i in range(len(labels))]:
            return m.group(0).replace('class="dataframe"', 'class="dataframe hide-index"', 1)
        return m.group(0)

    return _RANGE_INDEX_TABLE.sub(fix, html)


def _drop_repeated_images(outputs: list) -> list:
    """The outputs less any image identical to an earlier one of the same cell.

    A cell that ends with ``fig`` (the book's figure convention) shows its figure twice under
    matplotlib's inline backend: once as the cell's result and once more when the backend
    flushes the figures the cell opened. Both PNGs are the same bytes; keeping the first leaves
    one image, and MyST-NB one figure (two would be two targets of one ``name``).
    """
    seen: set[str] = set()
    kept = []
    for out in outputs:
        data = out.get("data", {})
        img = data.get("image/png") or data.get("image/svg+xml")
        if img is not None:
            key = "".join(img) if isinstance(img, list) else img
            if key in seen:
                continue
            seen.add(key)
        kept.append(out)
    return kept


def _drop_glued_duplicates(outputs: list) -> list:
    """In a cell that glues a figure for the book (MyST-NB ``glue``: an output whose metadata
    has ``scrapbook``), drop the cell's plain image outputs: the text's ``{glue:figure}`` shows
    the figure, so an inline copy (e.g. the returned ``Figure`` displayed as the cell's value)
    would show it twice."""
    if not any("scrapbook" in (o.get("metadata") or {}) for o in outputs):
        return outputs
    return [o for o in outputs if "scrapbook" in (o.get("metadata") or {})
            or not {"image/png", "image/svg+xml"} & set(o.get("data", {}))]


def prepare_for_book(nb, params: dict[str, Any]):
    """Make an executed notebook show its parameters once and its plain tables without index.

    The ``parameters`` cell and papermill's ``injected-parameters`` cell get the tag
    ``remove-cell`` (Jupyter Book drops them from the page), and one markdown cell,
    :func:`parameters_markdown`, takes their place. Every other code cell gets ``hide-input``
    (the page reads as text, figures and tables, the code a click away), so that no notebook
    source repeats the tag. pandas tables with a RangeIndex get the
    class ``hide-index``. A figure shown twice in one cell (the same image bytes) is shown once
    (:func:`_drop_repeated_images`), and a cell that glues its figure for the text shows no
    inline copy (:func:`_drop_glued_duplicates`). Idempotent; modifies ``nb`` in place and returns it.

    Args:
        nb: the executed notebook (nbformat).
        params: the ``-p`` values of the run.
    """
    import nbformat

    defaults: dict[str, Any] = {}
    for i, cell in enumerate(nb.cells):
        tags = cell.metadata.setdefault("tags", [])
        if cell.cell_type == "markdown" and cell.metadata.get("run_parameters"):
            nb.cells[i] = None  # an older display, rebuilt below
            continue
        if cell.cell_type == "code" and {"parameters", "injected-parameters"} & set(tags):
            if "parameters" in tags:
                defaults = _cell_defaults(cell.source)
            if "remove-cell" not in tags:
                tags.append("remove-cell")
        elif cell.cell_type == "code" and not {"remove-cell", "remove-input", "hide-input"} & set(tags):
            tags.append("hide-input")
        if cell.cell_type == "code":
            cell.outputs = _drop_glued_duplicates(_drop_repeated_images(cell.get("outputs", [])))
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            html = out.get("data", {}).get("text/html")
            if html is not None:
                joined = "".join(html) if isinstance(html, list) else html
                out["data"]["text/html"] = _hide_range_index(joined)
    nb.cells = [c for c in nb.cells if c is not None]
    first = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code" and
                  {"parameters", "injected-parameters"} & set(c.metadata["tags"])), None)
    if first is not None:
        md = nbformat.v4.new_markdown_cell(parameters_markdown(defaults, params))
        md.metadata["run_parameters"] = True
        nb.cells.insert(first, md)
    return nb


def peak_rss_mib() -> float:
    """Peak resident memory, in MiB, of this process and of its finished children (the kernel).

    ``resource.getrusage``'s ``ru_maxrss`` (KiB on Linux, bytes on macOS): the larger of this
    process's and the largest waited-for child's, i.e. the chapter's kernel after a run.
    """
    import resource

    unit = 1.0 if sys.platform == "darwin" else 1024.0  # bytes per ru_maxrss unit
    peak = max(resource.getrusage(who).ru_maxrss
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return peak * unit / 2**20


def book_warnings(nb) -> list[str]:
    """Where an executed chapter breaks the book's conventions (printed by :func:`main`).

    A figure cell (MyST-NB ``mystnb.figure`` metadata) must display exactly one image and no
    ``<Figure size ...>`` text; no other cell may leave that text (a figure shown twice or not
    closed); every code cell but the parameters cells carries the tag ``hide-input``.

    Returns:
        One line per problem, ``"code cell N: ..."`` (N counts the code cells from 1).
    """
    out = []
    code = [c for c in nb.cells if c.cell_type == "code"]
    for n, cell in enumerate(code, 1):
        tags = cell.metadata.get("tags", [])
        if {"parameters", "injected-parameters"} & set(tags):
            continue
        if "hide-input" not in tags:
            out.append(f"code cell {n}: no tag hide-input")
        images = sum("image/png" in o.get("data", {}) or "image/svg+xml" in o.get("data", {})
                     for o in cell.get("outputs", []))
        texts = [o.get("data", {}).get("text/plain", "") for o in cell.get("outputs", [])
                 if not ({"image/png", "image/svg+xml"} & set(o.get("data", {})))]
        stray = any("<Figure size" in ("".join(t) if isinstance(t, list) else t) for t in texts)
        if "figure" in cell.metadata.get("mystnb", {}) and images != 1:
            out.append(f"code cell {n}: a figure cell shows {images} images, not one")
        if stray:
            out.append(f"code cell {n}: a '<Figure size ...>' text output (a figure not shown "
                       "as an image)")
    return out


class _Terminated(Exception):
    """SIGTERM arrived (raised in the main thread, so every ``finally`` runs)."""


def _on_sigterm(signum, frame) -> None:  # noqa: ARG001 - the signal API
    raise _Terminated()


def timings_log() -> Path:
    """The run log: ``$ANALYSIS_TIMINGS`` or ``<repo>/.cache/timings.tsv`` (tests point it at a
    temporary folder, so a test run never adds rows that ``make bench`` would report)."""
    return Path(os.environ.get("ANALYSIS_TIMINGS", REPO / ".cache" / "timings.tsv"))


def _size(v: Any) -> float:
    return float(len(v)) if isinstance(v, (list, tuple)) else float(v)


def estimate_seconds(chapter: str, params: dict[str, Any], log: Path | None = None
                     ) -> tuple[float, str] | None:
    """A rough cost of running ``chapter`` with ``params``, from this machine's run log.

    The base is the latest logged run of the chapter with a plain profile (no overrides),
    preferring the same profile. The chapter's profile module names its ``COST_DRIVERS``: the
    parameters its time is taken to grow with, as a product (training set × epochs × seeds, the
    term that dominates at paper scale; it ignores fixed costs, so it overestimates small runs
    and is a rough guide, not a budget). Returns ``(seconds, how it was estimated)`` or None when
    there is no base run or no drivers.
    """
    import importlib

    from analysis import config

    try:
        drivers = getattr(importlib.import_module(f"analysis.profiles.{chapter}"), "COST_DRIVERS",
                          ())
    except ModuleNotFoundError:  # a notebook without a profile module: nothing to scale
        return None
    log = timings_log() if log is None else log
    if not drivers or not log.exists():
        return None
    target = params.get("profile", "full")
    base: dict[str, tuple[str, float]] = {}
    for line in log.read_text().splitlines():
        f = line.split("\t")
        if len(f) < 4 or f[1] != chapter:
            continue
        try:
            p = ast.literal_eval(f[3])
        except (ValueError, SyntaxError):
            continue
        if isinstance(p, dict) and set(p) == {"profile"}:
            base[p["profile"]] = (f[0][:10], float(f[2]))
    prof = target if target in base else next((q for q in ("full", "smoke") if q in base), None)
    if prof is None:
        return None
    schema = config.schema_for(chapter)
    have = config.validate(schema, prof, {}, chapter=chapter)
    want = config.validate(schema, target, {k: v for k, v in params.items() if k != "profile"},
                           chapter=chapter)
    ratio = math.prod(_size(want[d]) / _size(have[d]) for d in drivers)
    date, secs = base[prof]
    how = (f"the {prof} run of {date} ({secs / 60:.1f} min) × {ratio:.3g}, time taken to grow "
           f"with {' × '.join(drivers)}")
    return secs * ratio, how


def main(argv: list[str]) -> int:
    if argv[:1] == ["--deps"]:
        if len(argv) != 3:
            raise SystemExit("usage: python -m analysis.run --deps SRC.md TARGET")
        sys.stdout.write(deps_rule(Path(argv[1]), argv[2]))
        return 0

    import jupytext
    import papermill

    src, out, params = parse_args(argv)
    if not src.exists():
        raise SystemExit(f"error: no notebook source {src}")
    nb = jupytext.read(src)
    names = parameter_names(nb)
    extra = check_params(src.stem, names, params)
    out.parent.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("ANALYSIS_PROGRESS", "0")  # inherited by the kernel
    from analysis.report import BOOK_DISPLAY

    os.environ[BOOK_DISPLAY] = "1"  # whole table cells on the page (analysis.report)
    from analysis.config import RUN_PARAMS

    if extra:
        os.environ[RUN_PARAMS] = json.dumps({"chapter": src.stem, "params": extra})
    else:
        os.environ.pop(RUN_PARAMS, None)
    failed = out.with_name(out.stem + ".failed.ipynb")
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.stem}.", suffix=".run", dir=out.parent))
    try:
        inp = tmp / (src.stem + ".ipynb")
        jupytext.write(nb, inp)
        partial = tmp / "out.ipynb"
        t0 = time.perf_counter()
        print(f"executing {src} -> {out} with {params or 'defaults'}", flush=True)
        est = estimate_seconds(src.stem, params)
        if est is not None:
            print(f"estimated cost on this machine: about {est[0] / 60:.0f} min ({est[1]})",
                  flush=True)
        try:
            papermill.execute_notebook(str(inp), str(partial), parameters=params,
                                       kernel_name="python3", cwd=str(REPO),
                                       progress_bar=sys.stderr.isatty(), log_output=False)
        except BaseException as err:
            if partial.exists():
                os.replace(partial, failed)
                print(f"FAILED: the partial notebook is in {failed}", file=sys.stderr)
            if isinstance(err, _Terminated):
                raise SystemExit(128 + signal.SIGTERM) from None
            raise
        seconds = time.perf_counter() - t0
        import nbformat

        executed = nbformat.read(partial, as_version=4)
        nbformat.write(prepare_for_book(executed, params), partial)
        for problem in book_warnings(executed):
            print(f"warning: {src.stem}: {problem}", file=sys.stderr)
        os.replace(partial, out)
        failed.unlink(missing_ok=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)
    peak = peak_rss_mib()
    log = timings_log()
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as fh:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        fh.write(f"{stamp}\t{src.stem}\t{seconds:.1f}\t{params}\t{peak:.0f}\n")
    print(f"done {src.stem} in {seconds:.1f} s, peak memory {peak:.0f} MiB", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
