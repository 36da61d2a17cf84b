"""Execute one chapter notebook with papermill, after checking its parameters.

Usage::

    python -m analysis.run notebooks/NN_slug.md OUT.ipynb [-p NAME VALUE ...]

The MyST source is converted with jupytext, each ``-p NAME VALUE`` is checked against the
names in the notebook's ``parameters`` cell (an unknown name is an error, not papermill's
warning), values are parsed as int, float, bool, ``None`` or a ``[...]`` list, else kept as
text, and the notebook is executed into a temporary file that replaces ``OUT`` only on
success. A failed run leaves ``OUT.failed.ipynb`` for inspection and exits non-zero. The
wall time is appended to ``.cache/timings.tsv``.

Progress: a terminal shows papermill's bar over the notebook's cells; the kernel runs with
``ANALYSIS_PROGRESS=0`` (unless it is set already) so the executed notebook, and the book page
made from it, carry no tqdm bars.
"""

from __future__ import annotations

import ast
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def parse_value(text: str):
    """``"3"`` -> 3, ``"1e-3"`` -> 0.001, ``"True"`` -> True, ``"None"`` -> None,
    ``"[1, 2]"`` -> [1, 2]; anything else stays a string."""
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
    if text.startswith(("[", "(")):
        return ast.literal_eval(text)
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


def main(argv: list[str]) -> int:
    import jupytext
    import papermill

    src, out, params = parse_args(argv)
    if not src.exists():
        raise SystemExit(f"error: no notebook source {src}")
    nb = jupytext.read(src)
    names = parameter_names(nb)
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise SystemExit(f"error: unknown parameter(s) {unknown} for {src.name}; "
                         f"its parameters are {names}")
    out.parent.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("ANALYSIS_PROGRESS", "0")  # inherited by the kernel
    with tempfile.TemporaryDirectory() as tmp:
        inp = Path(tmp) / (src.stem + ".ipynb")
        jupytext.write(nb, inp)
        partial = Path(tmp) / "out.ipynb"
        t0 = time.perf_counter()
        print(f"executing {src} -> {out} with {params or 'defaults'}", flush=True)
        try:
            papermill.execute_notebook(str(inp), str(partial), parameters=params,
                                       kernel_name="python3", cwd=str(REPO),
                                       progress_bar=sys.stderr.isatty(), log_output=False)
        except BaseException:
            if partial.exists():
                failed = out.with_suffix(".failed.ipynb")
                os.replace(partial, failed)
                print(f"FAILED: the partial notebook is in {failed}", file=sys.stderr)
            raise
        seconds = time.perf_counter() - t0
        os.replace(partial, out)
    log = REPO / ".cache" / "timings.tsv"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as fh:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        fh.write(f"{stamp}\t{src.stem}\t{seconds:.1f}\t{params}\n")
    print(f"done {src.stem} in {seconds:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
