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
and exits non-zero. The wall time is appended to ``.cache/timings.tsv``.

Progress: a terminal shows papermill's bar over the notebook's cells; the kernel runs with
``ANALYSIS_PROGRESS=0`` (unless it is set already) so the executed notebook, and the book page
made from it, carry no tqdm bars.
"""

from __future__ import annotations

import ast
import json
import os
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


class _Terminated(Exception):
    """SIGTERM arrived (raised in the main thread, so every ``finally`` runs)."""


def _on_sigterm(signum, frame) -> None:  # noqa: ARG001 - the signal API
    raise _Terminated()


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
        os.replace(partial, out)
        failed.unlink(missing_ok=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)
    log = REPO / ".cache" / "timings.tsv"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as fh:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        fh.write(f"{stamp}\t{src.stem}\t{seconds:.1f}\t{params}\n")
    print(f"done {src.stem} in {seconds:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
