"""Mutation benchmark of the tests: deliberate, realistic errors in the maths (``make mutants``).

Usage: ``python -m analysis.mutants [--only ID,ID] [--time-limit SECONDS] [--list]``.

Each :class:`Mutation` names one file of the repository, an exact source snippet, its
replacement and the tests that should notice: pytest unit-test files and the chapters whose
nbval references (``tests/notebooks/<stem>.ipynb``) exercise the code. A snippet must occur
*exactly once* in its file; otherwise the mutation is reported as ``STALE`` (code moved, the
list in this module needs updating) instead of silently mutating nothing.

For every mutation the tool

1. copies the tracked and untracked-but-not-ignored files (``git ls-files -co
   --exclude-standard``) into a fresh scratch folder under the system temp directory and applies
   the mutation there (the working tree is never touched);
2. runs the main virtual environment's Python with ``PYTHONPATH`` at the scratch copy, after
   checking that ``import analysis`` then resolves to the scratch copy and not to the editable
   install of the repository;
3. runs the unit-test files with ``-x`` (the first failure kills the mutant), then, only if the
   mutant survived them, the chapters' nbval references;
4. confirms each kill: the killing unit test (or, for an nbval kill, the whole notebook) must
   pass on an unmutated scratch copy; otherwise the kill says nothing about the mutation and the
   mutant is reported ``INVALID``.

Every run gets its own artefact cache and verdict-record folder inside its scratch copy
(``ANALYSIS_CACHE``, ``ANALYSIS_RECORDS``): a mutant never reads from or writes into the
repository's ``.cache/analysis``. The cache keys hash the producing code, so sharing would be
safe in principle, but an isolated cold cache guarantees that no cached result computed by the
correct code can hide a mutation (nor a mutated result leak into the book).

Results go to stdout as a table (id, description, outcome, seconds) and to
``.cache/mutants.json`` (which keeps the latest outcome of every mutation: a run of a subset
updates only its own entries). The exit status is 0 whatever the outcome (this is a benchmark of the
tests, not a test); the last line gives the number of survivors.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = "tests/notebooks"
KILLERS = "tests/test_mutant_killers.py"  # property tests added for mutants the module tests missed


class StaleMutation(ValueError):
    """A mutation's snippet does not occur exactly once in its file."""


@dataclass(frozen=True)
class Mutation:
    """One deliberate error.

    Attributes:
        id: short unique name.
        file: path relative to the repository root.
        old: exact source snippet (must occur exactly once in ``file``).
        new: its replacement.
        description: one line: what the error is, in the maths' terms.
        tests: pytest unit-test files (repository-relative) that should kill it.
        notebooks: chapter stems whose nbval references should kill it.
    """

    id: str
    file: str
    old: str
    new: str
    description: str
    tests: tuple[str, ...] = ()
    notebooks: tuple[str, ...] = ()


MUTATIONS: tuple[Mutation, ...] = (
    Mutation(
        "hessian-radius-halved", "analysis/bounds/hessian.py",
        "return torch.where(valid, lo, torch.zeros_like(lo))",
        "return torch.where(valid, lo / 2, torch.zeros_like(lo))",
        "Cross-Hölder (Thm 2 / Cor 1) certified radius returned at half its value",
        ("tests/test_hessian_bounds.py", "tests/test_crossholder.py"),
        ("05_hessian_crossholder",)),
    Mutation(
        "hessian-sup-d2-halved", "analysis/bounds/hessian.py",
        "return 0.5 * info[\"c\"].abs().amax(dim=2)",
        "return 0.25 * info[\"c\"].abs().amax(dim=2)",
        "global SWISH Hessian bound uses sup|s''| = 0.25 instead of 0.5 (unsound K)",
        ("tests/test_hessian_bounds.py", "tests/test_crossholder.py"),
        ("05_hessian_crossholder",)),
    Mutation(
        "peck-sound-drops-norm", "analysis/bounds/peck/rules.py",
        "lip = ACTIVATIONS[act].A * float(torch.linalg.matrix_norm(V, ord=2))",
        "lip = ACTIVATIONS[act].A",
        "Peck sound chain rule for Linear+activation drops the factor ‖V‖₂ of the Lipschitz "
        "constant",
        ("tests/test_peck.py", "tests/test_peck_experiments.py", KILLERS), ("03_peck_bounds",)),
    Mutation(
        "peck-taylor-sign", "analysis/bounds/peck/rules.py",
        "den = jnorm + torch.sqrt(",
        "den = -jnorm + torch.sqrt(",
        "Peck Thm 4.2 (Taylor rule): sign of ‖J‖ flipped in the stable root 2δ/(‖J‖ + √…)",
        ("tests/test_peck.py", "tests/test_peck_experiments.py"), ("03_peck_bounds",)),
    Mutation(
        "peck-pool-floor", "analysis/bounds/peck/rules.py",
        "cov = math.ceil(q / s)",
        "cov = q // s",
        "Peck pooling Lipschitz constant: window overlap ⌊q/s⌋ instead of ⌈q/s⌉ (off by one "
        "when s does not divide q)",
        ("tests/test_peck.py",), ("03_peck_bounds",)),
    Mutation(
        "pgd-no-box-clip", "analysis/attacks/gradient.py",
        "new = _clip(xl + new, box) - xl",
        "new = new",
        "PGD/BIM iterates are not clipped to the input box [0, 1] (only the final output is)",
        ("tests/test_attacks.py", KILLERS), ("00_toolkit",)),
    Mutation(
        "clip-lower-end", "analysis/attacks/core.py",
        "return torch.maximum(torch.minimum(x, hi), lo)",
        "return torch.minimum(x, hi)",
        "the box clip of every attack forgets the lower end (pixels may go below 0)",
        ("tests/test_attacks.py",), ("00_toolkit",)),
    Mutation(
        "fisher-rglob-sqrt2", "analysis/bounds/fisher.py",
        "\"r_glob\": math.sqrt(2.0) * jac.d_B.double() / ls",
        "\"r_glob\": jac.d_B.double() / ls",
        "Fisher certified radius r_glob = √2·d_B/L_s loses its factor √2",
        ("tests/test_fisher.py", KILLERS), ("02_fisher_jacobian",)),
    Mutation(
        "curvature-nu-factor", "analysis/bounds/curvature.py",
        "den = a + np.sqrt(a * a + 2.0 * nu * t)",
        "den = a + np.sqrt(a * a + nu * t)",
        "curvature bound h(a, ν, t): root of ½νr² + ar = t computed as if it were νr² + ar = t",
        ("tests/test_curvature.py",), ("01_warwick_rnn",)),
    Mutation(
        "semicircle-norm", "analysis/rmt.py",
        "/ (2 * np.pi * sigma**2)",
        "/ (np.pi * sigma**2)",
        "Wigner semicircle density normalised by πσ² instead of 2πσ² (integrates to 2)",
        ("tests/test_rmt.py",), ("01_warwick_rnn",)),
    Mutation(
        "pathkernel-gl-weight", "analysis/pathkernel.py",
        "torch.from_numpy(w / 2)",
        "torch.from_numpy(w)",
        "path-kernel integral over t ∈ [0, 1]: Gauss-Legendre weights of [-1, 1] not halved",
        ("tests/test_pathkernel.py",), ("04_persistence_pathkernel",)),
    Mutation(
        "persistence-threshold", "analysis/persistence.py",
        "up = p > gamma",
        "up = p > 1 - gamma",
        "persistence bisection compares p̂(σ) with 1 − γ instead of the stability level γ",
        ("tests/test_persistence.py",), ("04_persistence_pathkernel",)),
    Mutation(
        "jacobian-not-squared", "analysis/regularizers/jacobian.py",
        "total = total + g.pow(2).reshape(B, -1).sum(1)",
        "total = total + g.reshape(B, -1).norm(dim=1)",
        "Jacobian regulariser sums projected-gradient norms ‖∇(v̂·z)‖ instead of their squares",
        ("tests/test_regularizers_jacobian_hessian.py",), ("01_warwick_rnn",)),
    Mutation(
        "cache-key-ignores-code", "analysis/cache.py",
        "\"key\": _canon(key), \"code\": code_hash(code),",
        "\"key\": _canon(key),",
        "cache key ignores the producing code (an edit to the maths would reuse stale results)",
        ("tests/test_cache.py", "tests/test_train.py"), ()),
)


def get(mutation_id: str) -> Mutation:
    """The mutation named ``mutation_id``.

    Raises:
        KeyError: no such mutation (the message lists the valid ids).
    """
    for m in MUTATIONS:
        if m.id == mutation_id:
            return m
    raise KeyError(f"unknown mutation {mutation_id!r}; valid: {[m.id for m in MUTATIONS]}")


def apply(mutation: Mutation, root: Path) -> Path:
    """Apply ``mutation`` to the copy of its file under ``root`` (in place).

    Args:
        mutation: the mutation.
        root: a repository root (a scratch copy; never the working tree in normal use).

    Returns:
        The mutated file's path.

    Raises:
        StaleMutation: the file is missing or the snippet does not occur exactly once.
    """
    path = Path(root) / mutation.file
    if not path.is_file():
        raise StaleMutation(f"mutation {mutation.id!r}: file {mutation.file} does not exist")
    text = path.read_text(encoding="utf-8")
    count = text.count(mutation.old)
    if count != 1:
        raise StaleMutation(
            f"mutation {mutation.id!r}: snippet {mutation.old!r} occurs {count} times in "
            f"{mutation.file} (expected exactly once); update analysis/mutants.py")
    path.write_text(text.replace(mutation.old, mutation.new, 1), encoding="utf-8")
    return path


def scratch_copy(repo: Path, dest: Path) -> Path:
    """Copy the tracked and untracked-but-not-ignored files of ``repo`` into ``dest``.

    Args:
        repo: a git working tree.
        dest: target folder (created).

    Returns:
        ``dest``.
    """
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=repo,
                         check=True, capture_output=True).stdout.decode()
    dest.mkdir(parents=True, exist_ok=True)
    for rel in filter(None, out.split("\0")):
        src = repo / rel
        if not src.is_file():  # tracked but deleted in the working tree
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    return dest


def scratch_env(root: Path) -> dict[str, str]:
    """Environment for a run against the scratch copy ``root`` (own cache, own records)."""
    env = dict(os.environ)
    env.update({
        "PYTHONPATH": str(root),
        "PYTHONDONTWRITEBYTECODE": "1",
        "ANALYSIS_CACHE": str(root / ".cache" / "analysis"),
        "ANALYSIS_RECORDS": str(root / ".cache" / "records"),
        "ANALYSIS_PROGRESS": "0",
        "ANALYSIS_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
    })
    return env


def check_import(root: Path, python: str = sys.executable) -> Path:
    """Check that ``import analysis`` under :func:`scratch_env` loads the scratch copy.

    Returns:
        The resolved ``analysis/__init__.py`` that was imported.

    Raises:
        RuntimeError: the import resolves elsewhere (e.g. to the editable install).
    """
    out = subprocess.run([python, "-c", "import analysis; print(analysis.__file__)"], cwd=root,
                         env=scratch_env(root), check=True, capture_output=True, text=True)
    got = Path(out.stdout.strip()).resolve()
    want = (root / "analysis" / "__init__.py").resolve()
    if got != want:
        raise RuntimeError(f"import analysis resolved to {got}, not the scratch copy {want}")
    return got


_FAILED = re.compile(r"^(FAILED|ERROR) (\S+(?:::[^\n]*?)?)(?: - .*)?$", re.M)


def first_failure(output: str) -> str | None:
    """The first ``FAILED``/``ERROR`` node id of a pytest ``-rfE`` summary (``None`` if none)."""
    m = _FAILED.search(output)
    return m.group(2).strip() if m else None


@dataclass
class Outcome:
    """Result of one mutant (``status``: killed, SURVIVED, STALE, TIMEOUT, ERROR, INVALID)."""

    id: str
    description: str
    status: str
    killer: str | None = None
    seconds: float = 0.0
    detail: str = ""
    ran: list[str] = field(default_factory=list)
    finished: str = ""


def _pytest(python: str, root: Path, args: Sequence[str], timeout: float) -> tuple[int, str]:
    cmd = [python, "-m", "pytest", *args, "-q", "-rfE", "-p", "no:cacheprovider"]
    try:
        p = subprocess.run(cmd, cwd=root, env=scratch_env(root), capture_output=True, text=True,
                           timeout=max(timeout, 1.0))
    except subprocess.TimeoutExpired:
        return -1, ""
    return p.returncode, p.stdout + p.stderr


def _nbval_args(stem: str) -> list[str]:
    return [f"{NOTEBOOKS}/{stem}.ipynb", "--nbval-lax", "--nbval-cell-timeout=900", "-x"]


def run_mutant(mutation: Mutation, *, repo: Path = REPO, python: str = sys.executable,
               time_limit: float = 360.0, keep: bool = False) -> Outcome:
    """Apply ``mutation`` in a scratch copy and run its unit tests, then its nbval references.

    Args:
        mutation: the mutation.
        repo: the repository to copy.
        python: interpreter with the project installed (the main ``.venv``).
        time_limit: seconds for all of this mutant's test runs together.
        keep: keep the scratch folder (its path is in ``detail``).

    Returns:
        :class:`Outcome` (``killer`` is the first failing test's node id; not yet confirmed on
        unmutated code, see :func:`confirm`).
    """
    t0 = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix=f"mutant-{mutation.id}-"))
    out = Outcome(mutation.id, mutation.description, "ERROR")
    try:
        scratch_copy(repo, root)
        try:
            apply(mutation, root)
        except StaleMutation as err:
            out.status, out.detail = "STALE", str(err)
            return out
        check_import(root, python)
        runs = [(t, [t, "-x"]) for t in mutation.tests]
        runs += [(f"{NOTEBOOKS}/{s}.ipynb", _nbval_args(s)) for s in mutation.notebooks]
        for name, args in runs:
            left = time_limit - (time.monotonic() - t0)
            if left <= 0:
                out.status, out.detail = "TIMEOUT", f"time limit {time_limit:.0f} s before {name}"
                return out
            rc, text = _pytest(python, root, args, left)
            out.ran.append(name)
            if rc == -1:
                out.status, out.detail = "TIMEOUT", f"time limit {time_limit:.0f} s in {name}"
                return out
            if rc in (1, 2):  # tests failed / collection or import error
                out.status = "killed"
                out.killer = first_failure(text) or f"{name} (exit {rc})"
                out.detail = text[-2000:]
                return out
            if rc != 0:
                out.status, out.detail = "ERROR", f"pytest exit {rc} on {name}:\n{text[-2000:]}"
                return out
        out.status = "SURVIVED"
        return out
    finally:
        out.seconds = round(time.monotonic() - t0, 1)
        out.finished = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if keep:
            out.detail = f"{out.detail}\nscratch: {root}".strip()
        else:
            shutil.rmtree(root, ignore_errors=True)


def confirm(outcomes: Sequence[Outcome], *, repo: Path = REPO, python: str = sys.executable,
            time_limit: float = 600.0) -> None:
    """Re-run each distinct killer on an unmutated scratch copy; a killer that fails there too
    turns its mutant's status into ``INVALID`` (in place).

    A unit-test killer is re-run by node id; an nbval killer by its whole notebook (its cells
    depend on each other).
    """
    killed = [o for o in outcomes if o.status == "killed" and o.killer]
    if not killed:
        return
    root = Path(tempfile.mkdtemp(prefix="mutant-baseline-"))
    try:
        scratch_copy(repo, root)
        check_import(root, python)
        verdict: dict[str, tuple[bool, str]] = {}
        for o in killed:
            target = o.killer.split(" (exit ")[0]
            if target.startswith(NOTEBOOKS):
                target = target.split("::")[0]
            if target not in verdict:
                args = (_nbval_args(Path(target).stem) if target.startswith(NOTEBOOKS)
                        else [target])
                rc, text = _pytest(python, root, args, time_limit)
                verdict[target] = (rc == 0, text[-1500:])
            ok, text = verdict[target]
            if not ok:
                o.status = "INVALID"
                o.detail = f"killer {target} fails without the mutation too:\n{text}"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def table(outcomes: Sequence[Outcome]) -> str:
    """Plain-text table: id, outcome (killer or status), seconds, description."""
    rows = [("mutation", "outcome", "s", "description")]
    for o in outcomes:
        res = f"killed by {o.killer}" if o.status == "killed" else o.status
        rows.append((o.id, res, f"{o.seconds:.0f}", o.description))
    w = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(f"{r[0]:<{w[0]}}  {r[1]:<{w[1]}}  {r[2]:>{w[2]}}  {r[3]}" for r in rows)


def write_json(path: Path, outcomes: Sequence[Outcome]) -> None:
    """Record ``outcomes`` in ``path``, replacing earlier records of the same ids and keeping
    the others (a run of a subset updates only its mutations); ordered as :data:`MUTATIONS`."""
    old: dict[str, dict] = {}
    if path.exists():
        try:
            old = {r["id"]: r for r in json.loads(path.read_text())["mutations"]}
        except (ValueError, KeyError, TypeError):
            old = {}
    old.update({o.id: asdict(o) for o in outcomes})
    order = {m.id: i for i, m in enumerate(MUTATIONS)}
    rows = sorted(old.values(), key=lambda r: order.get(r["id"], len(order)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"mutations": rows}, indent=1, ensure_ascii=False))


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run the mutations, print the table, write ``.cache/mutants.json``."""
    ap = argparse.ArgumentParser(prog="python -m analysis.mutants", description=__doc__.split(
        "\n")[0])
    ap.add_argument("--only", default="", help="comma-separated mutation ids (default: all)")
    ap.add_argument("--time-limit", type=float, default=360.0,
                    help="seconds per mutant, all its test runs together (default 360)")
    ap.add_argument("--list", action="store_true", help="list the mutations and exit")
    ap.add_argument("--no-confirm", action="store_true",
                    help="skip re-running the killers on unmutated code")
    ap.add_argument("--keep", action="store_true", help="keep the scratch copies")
    ap.add_argument("--out", default=str(REPO / ".cache" / "mutants.json"))
    a = ap.parse_args(argv)
    chosen = [get(i) for i in a.only.split(",") if i] if a.only else list(MUTATIONS)
    if a.list:
        for m in chosen:
            print(f"{m.id:<24} {m.file:<38} {m.description}")
        return 0
    outcomes = []
    for m in chosen:
        o = run_mutant(m, time_limit=a.time_limit, keep=a.keep)
        print(f"[{o.status}] {o.id} ({o.seconds:.0f} s) {o.killer or ''}", flush=True)
        outcomes.append(o)
    if not a.no_confirm:
        confirm(outcomes)
    print(table(outcomes))
    for o in outcomes:
        if o.status in ("STALE", "ERROR", "INVALID"):
            print(f"\n{o.id}: {o.status}\n{o.detail}")
    write_json(Path(a.out), outcomes)
    survivors = sum(o.status == "SURVIVED" for o in outcomes)
    other = sum(o.status not in ("killed", "SURVIVED") for o in outcomes)
    note = f" ({other} stale/timeout/error/invalid, see above)" if other else ""
    print(f"survivors: {survivors} of {len(outcomes)} mutations{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
