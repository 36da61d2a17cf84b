"""``make bench``: what the expensive parts of the report cost, as ratios with intervals.

Usage: ``python -m analysis.bench [--tiny] [--out .cache/bench.json]``.

Each measurement times two computations on the same inputs, interleaved round by round (so a
load spike on a shared machine hits both alike), after untimed warm-up rounds. The ratio of
one round is paired; the report gives the median ratio over the rounds with a bootstrap
interval (:func:`analysis.stats.bootstrap_ci`, statistic the median, 95 %). One torch thread,
as the chapters run.

Measurements (small, random-initialised networks at the chapters' smoke settings: a cost
measurement needs no trained weights; the whole run takes a few minutes on 2 CPU cores):

* ``ch_per_batch``: one Cross-Hölder training step (cross-entropy + :class:`CrossHolder` through
  :class:`CrossHolderObjective`, chapter 05's smoke settings) ÷ one plain cross-entropy step,
  per batch (:func:`analysis.regularizers.crossholder.time_steps`).
* ``hr_per_batch``: one step with the Hessian regulariser (:class:`HessianRegularizer`,
  chapter 01's smoke ``hr_examples`` on its row-by-row RNN) ÷ one plain step.
* ``peck_per_image``: Peck's sound bounds (:func:`analysis.bounds.peck.chain_bounds`) ÷ the
  strong minimal-norm attacks (:func:`analysis.attacks.min_norm` with chapter 03's smoke
  ``strong_attacks``) on the same images of a ReLU MLP.
* ``persistence_throughput``: samples per second of the persistence Monte Carlo
  (:func:`analysis.persistence.fraction_stable`) ÷ the raw batched forward pass of the same
  net (:func:`analysis.persistence.throughput`, one round per call).
* ``pathkernel_cost``: evaluating the exact discrete path kernel
  (:func:`analysis.pathkernel.kernel_machine`) ÷ the gradient-descent training it explains
  (:func:`analysis.pathkernel.train_gd`).

Peak memory and wall time per chapter come from ``.cache/timings.tsv`` (the last run of each
chapter that recorded its peak memory, with its profile: written by :mod:`analysis.run`).
Writes ``.cache/bench.json`` and prints a markdown table (the README's performance section).
"""

from __future__ import annotations

import ast
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from analysis.stats import Estimate, bootstrap_ci

REPO = Path(__file__).resolve().parent.parent
TIMINGS = Path(os.environ.get("ANALYSIS_TIMINGS", REPO / ".cache" / "timings.tsv"))
OUT = REPO / ".cache" / "bench.json"


@dataclass(frozen=True)
class Sizes:
    """How big each measurement is (``TINY`` for the test, ``SMALL`` for ``make bench``)."""

    repeats: int  # timed rounds per measurement
    warmup: int  # untimed rounds first
    batch: int  # training batch (CH, HR)
    images: int  # attacked / bounded images (Peck)
    mc_samples: int  # Monte-Carlo samples per point (persistence)
    mc_points: int  # points (persistence)
    pk_train: int  # training points of the path-kernel run
    pk_steps: int  # its gradient-descent steps
    pk_test: int  # points where the kernel is evaluated


SMALL = Sizes(repeats=15, warmup=2, batch=32, images=8, mc_samples=500, mc_points=8,
              pk_train=32, pk_steps=10, pk_test=2)
TINY = Sizes(repeats=3, warmup=1, batch=4, images=2, mc_samples=20, mc_points=2,
             pk_train=8, pk_steps=2, pk_test=1)


def interleaved(fns: Mapping[str, Callable[[], Any]], repeats: int,
                warmup: int = 1) -> dict[str, list[float]]:
    """Seconds of each function per round, the functions called round-robin in every round.

    Args:
        fns: name -> function of no argument (the work to time; its result is discarded).
        repeats: timed rounds, ``>= 1``.
        warmup: untimed rounds first, ``>= 0``.

    Returns:
        name -> ``repeats`` wall times in seconds, round by round (paired across names).
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats}, {warmup}")
    times: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(warmup + repeats):
        for name, f in fns.items():
            t0 = time.perf_counter()
            f()
            dt = time.perf_counter() - t0
            if r >= warmup:
                times[name].append(dt)
    return times


def paired_ratio(numerator: Sequence[float], denominator: Sequence[float],
                 level: float = 0.95) -> Estimate:
    """Median over rounds of ``numerator[i] / denominator[i]``, with a bootstrap interval.

    Args:
        numerator, denominator: per-round costs (seconds, or rates), paired by round.
        level: confidence level.

    Returns:
        The :class:`Estimate` (``n_points`` = rounds); with fewer than 3 rounds, or rounds
        whose ratios are all equal, the interval is degenerate (the bootstrap cannot make one).
    """
    num, den = np.asarray(numerator, float), np.asarray(denominator, float)
    if num.shape != den.shape or num.ndim != 1 or len(num) == 0:
        raise ValueError(f"need two equal-length 1-D samples, got {num.shape}, {den.shape}")
    if (den <= 0).any() or (num < 0).any():
        raise ValueError("costs must be positive")
    ratios = num / den
    if len(ratios) < 3 or np.ptp(ratios) == 0:
        med = float(np.median(ratios))
        return Estimate(med, -np.inf, np.inf, level, len(ratios), method="too few rounds",
                        degenerate=True)
    return bootstrap_ci(ratios, np.median, level=level, method="percentile")


def _estimate_dict(e: Estimate) -> dict[str, Any]:
    d = asdict(e)
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in d.items()}


def _measurement(what: str, num: str, den: str, times: Mapping[str, Sequence[float]],
                 invert: bool = False) -> dict[str, Any]:
    """A record: the ratio ``num / den`` of per-round costs (``invert``: of rates)."""
    e = paired_ratio(times[num], times[den])
    return {"what": what, "numerator": num, "denominator": den, "ratio": _estimate_dict(e),
            "median_s": {k: float(np.median(v)) for k, v in times.items()},
            "rates" if invert else "seconds": {k: list(map(float, v)) for k, v in times.items()}}


# --------------------------------------------------------------------------- the measurements

def bench_crossholder(s: Sizes, device: str = "cpu") -> dict[str, Any]:
    """CH ÷ plain per training batch, chapter 05's smoke regulariser on its smoke CNN."""
    import torch

    from analysis import config, models
    from analysis.regularizers.crossholder import CrossHolder, CrossHolderObjective, time_steps

    cfg = config.resolve("05_hessian_crossholder", "smoke")
    torch.manual_seed(0)
    model = models.build("swish_cnn", seed=0, width=cfg.width, fc=cfg.fc).to(device)
    x = torch.rand(s.batch, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (s.batch,), device=device)
    reg = CrossHolder(1.0, classes=cfg.ch_classes, iters=cfg.ch_iters, warm_start=True,
                      warm_iters=cfg.ch_warm_iters)
    times = time_steps(model, x, y, {"plain": None, "cross_holder": CrossHolderObjective(reg)},
                       repeats=s.repeats, warmup=s.warmup, raw=True)
    return _measurement("Cross-Hölder step ÷ plain step (per batch)", "cross_holder", "plain",
                        times)


def bench_hessian(s: Sizes, device: str = "cpu") -> dict[str, Any]:
    """HR ÷ plain per training batch, chapter 01's smoke regulariser on its row-by-row RNN."""
    import torch

    from analysis import config, models
    from analysis.regularizers.crossholder import time_steps
    from analysis.regularizers.hessian import HessianRegularizer

    cfg = config.resolve("01_warwick_rnn", "smoke")
    model = models.build("rnn_rows", seed=0, hidden=cfg.hidden).to(device)
    x = torch.rand(s.batch, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (s.batch,), device=device)
    reg = HessianRegularizer(cfg.lam_hr, n_examples=min(cfg.hr_examples, s.batch))
    times = time_steps(model, x, y, {"plain": None, "hessian": reg}, repeats=s.repeats,
                       warmup=s.warmup, raw=True)
    return _measurement("Hessian-regularised step ÷ plain step (per batch)", "hessian", "plain",
                        times)


def bench_peck(s: Sizes, device: str = "cpu") -> dict[str, Any]:
    """Peck's sound bounds ÷ the strong minimal-norm attacks, on the same images."""
    import torch

    from analysis import config, models
    from analysis.attacks import min_norm
    from analysis.bounds.peck import chain_bounds

    strong = tuple(config.resolve("03_peck_bounds", "smoke").strong_attacks)
    model = models.build("mlp", seed=0, in_shape=784, widths=[64, 64],
                         activation="relu").to(device).eval()
    x = torch.rand(s.images, 784, device=device)  # flat: chain_bounds walks the Linear layers
    with torch.no_grad():
        y = model(x).argmax(1)  # every image "correct": the attacks run on all of them
    times = interleaved({"bounds": lambda: chain_bounds(model, x, "sound"),
                         "attacks": lambda: min_norm(model, x, y, attacks=strong)},
                        repeats=s.repeats, warmup=s.warmup)
    return _measurement("Peck's bounds ÷ strong attacks (per image)", "bounds", "attacks", times)


def bench_persistence(s: Sizes, device: str = "cpu") -> dict[str, Any]:
    """Monte-Carlo persistence throughput ÷ the raw batched forward throughput."""
    import torch

    from analysis import models
    from analysis.persistence import throughput

    model = models.build("mlp", seed=0, in_shape=(1, 28, 28), widths=[64],
                         activation="relu").to(device).eval()
    x = torch.rand(1, 1, 28, 28, device=device)
    rates: dict[str, list[float]] = {"monte_carlo": [], "raw_forward": []}
    for r in range(s.warmup + s.repeats):
        out = throughput(model, x, n_samples=s.mc_samples, n_points=s.mc_points, repeats=1,
                         seed=r)
        if r >= s.warmup:
            rates["monte_carlo"].append(out["mc_per_s"])
            rates["raw_forward"].append(out["raw_per_s"])
    return _measurement("Monte-Carlo samples/s ÷ raw forward samples/s", "monte_carlo",
                        "raw_forward", rates, invert=True)


def bench_pathkernel(s: Sizes, device: str = "cpu") -> dict[str, Any]:  # noqa: ARG001 - CPU
    """The exact path kernel at a few points ÷ the training run it explains (float64, CPU)."""
    import torch

    from analysis.pathkernel import kernel_machine, train_gd

    g = torch.Generator().manual_seed(0)
    X = torch.randn(s.pk_train, 8, generator=g, dtype=torch.float64)
    Y = (X[:, 0] > 0).long()
    xt = torch.randn(s.pk_test, 8, generator=g, dtype=torch.float64)
    state: dict[str, Any] = {}

    def train() -> None:
        state["traj"] = train_gd(X, Y, [8, 16, 2], lr=0.1, steps=s.pk_steps, seed=0)

    train()
    times = interleaved({"kernel": lambda: kernel_machine(state["traj"], xt, progress=False),
                         "training": train}, repeats=s.repeats, warmup=s.warmup)
    return _measurement("path-kernel evaluation ÷ the training it explains", "kernel",
                        "training", times)


MEASUREMENTS: dict[str, Callable[[Sizes, str], dict[str, Any]]] = {
    "ch_per_batch": bench_crossholder,
    "hr_per_batch": bench_hessian,
    "peck_per_image": bench_peck,
    "persistence_throughput": bench_persistence,
    "pathkernel_cost": bench_pathkernel,
}


# --------------------------------------------------------------------------- chapters' runs

def chapter_runs(log: Path = TIMINGS,
                 chapters: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """The last run of each chapter in ``log`` that recorded its peak memory.

    Lines are ``UTC time, chapter, seconds, parameters[, peak MiB]`` (tab-separated, by
    :mod:`analysis.run`); older lines without the fifth column are skipped.

    Args:
        log: the timings log.
        chapters: keep only these stems (None: every name in the log, test demos included).

    Returns:
        chapter -> ``{"when", "seconds", "profile", "params", "peak_mib"}``; the profile is
        ``"default"`` when the run did not set one (the notebook's own, ``smoke``).
    """
    runs: dict[str, dict[str, Any]] = {}
    if not log.is_file():
        return runs
    for line in log.read_text().splitlines():
        cols = line.split("\t")
        if len(cols) < 5 or (chapters is not None and cols[1] not in chapters):
            continue
        try:
            params = ast.literal_eval(cols[3])
        except (ValueError, SyntaxError):
            params = {}
        runs[cols[1]] = {"when": cols[0], "seconds": float(cols[2]),
                         "profile": params.get("profile", "default") if isinstance(
                             params, dict) else "?", "params": cols[3],
                         "peak_mib": float(cols[4])}
    return runs


# --------------------------------------------------------------------------- report

def _g(x: float | None) -> str:
    from analysis.report import sig3

    return "—" if x is None else sig3(x)


def markdown(result: Mapping[str, Any]) -> str:
    """The README's performance tables: the ratios, then each chapter's last run."""
    m = result["machine"]
    lines = [f"Measured {result['date']} on {m['cpu']} ({m['cores']} cores, torch "
             f"{m['torch']}, {m['threads']} thread(s), device {m['device']}); sizes "
             f"`{result['sizes_name']}`: {result['sizes']}.", "",
             "| measurement | ratio | 95 % interval | rounds |", "|---|---|---|---|"]
    for rec in result["measurements"].values():
        e = rec["ratio"]
        iv = "—" if e["low"] is None or e["high"] is None else f"[{_g(e['low'])}, {_g(e['high'])}]"
        lines.append(f"| {rec['what']} | {_g(e['value'])} | {iv} | {e['n_points']} |")
    runs = result["chapters"]
    if runs:
        lines += ["", "| chapter | profile | wall time (s) | peak memory (MiB) | run at (UTC) |",
                  "|---|---|---|---|---|"]
        lines += [f"| {c} | {r['profile']} | {_g(r['seconds'])} | {_g(r['peak_mib'])} | "
                  f"{r['when']} |" for c, r in sorted(runs.items())]
    else:
        lines += ["", "No chapter run with a recorded peak memory yet (`make smoke`)."]
    return "\n".join(lines) + "\n"


def machine(device: str) -> dict[str, Any]:
    import os

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "device": device, "python": platform.python_version()}


def run(sizes: Sizes = SMALL, names: Sequence[str] | None = None, device: str = "cpu",
        out: Path | None = OUT, log: Path = TIMINGS, sizes_name: str = "small",
        chapters: Sequence[str] | None = None, threads: int = 1) -> dict[str, Any]:
    """Run the measurements and write ``out`` (JSON).

    Args:
        sizes: :data:`SMALL` (``make bench``) or :data:`TINY` (the test).
        names: which of :data:`MEASUREMENTS` (all when None).
        device: torch device of the networks (the path kernel runs on the CPU).
        out: the JSON file to write (None: write nothing).
        log: the chapters' timings log.
        sizes_name: the sizes' name, for the record.
        chapters: the chapters whose runs to report (None: the stems of ``notebooks/``).
        threads: torch threads (1, as the chapters run; the number is recorded).
    """
    import torch

    if chapters is None:
        chapters = sorted(p.stem for p in (REPO / "notebooks").glob("*.md"))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    measurements = {}
    for name in names or MEASUREMENTS:
        t0 = time.perf_counter()
        measurements[name] = MEASUREMENTS[name](sizes, device)
        measurements[name]["bench_seconds"] = time.perf_counter() - t0
        print(f"  {name}: {measurements[name]['ratio']['value']:.3g} "
              f"({measurements[name]['bench_seconds']:.0f} s)", file=sys.stderr, flush=True)
    result = {"date": datetime.now(UTC).date().isoformat(), "machine": machine(device),
              "sizes_name": sizes_name, "sizes": asdict(sizes), "measurements": measurements,
              "chapters": chapter_runs(log, chapters)}
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=1))
        tmp.replace(out)
    return result


def main(argv: list[str]) -> int:
    tiny = "--tiny" in argv
    out = OUT
    if "--out" in argv:
        out = Path(argv[argv.index("--out") + 1])
    device = argv[argv.index("--device") + 1] if "--device" in argv else "cpu"
    result = run(TINY if tiny else SMALL, device=device, out=out,
                 sizes_name="tiny" if tiny else "small")
    print(markdown(result))
    print(f"written {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
