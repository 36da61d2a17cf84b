"""Seeding, device choice and the provenance table of a run."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import random
import sys
from typing import Any

import numpy as np
import torch

DEFAULT_THREADS = 1  # fixed so printed numbers do not depend on the machine; small models gain
#                      little from a second thread (set ANALYSIS_THREADS to change it)


def seed_everything(seed: int, threads: int | None = None) -> torch.Generator:
    """Seed Python, NumPy and torch, fix the thread count and return a seeded generator.

    Args:
        seed: non-negative integer.
        threads: torch intra-op threads (default ``$ANALYSIS_THREADS`` or 1). Fixing it keeps
            CPU reductions, and so the printed numbers, the same from run to run.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    n = threads or int(os.environ.get("ANALYSIS_THREADS", DEFAULT_THREADS))
    torch.set_num_threads(max(1, n))
    return torch.Generator().manual_seed(seed)


def progress_enabled(flag: bool | None = None) -> bool:
    """Whether to draw a tqdm progress bar: ``flag`` if given and false, else on unless
    ``$ANALYSIS_PROGRESS`` is ``0``/``off``/``false`` (papermill runs set it, so executed
    notebooks carry no bars; :mod:`analysis.run` shows papermill's per-cell bar instead)."""
    if flag is not None and not flag:
        return False
    return os.environ.get("ANALYSIS_PROGRESS", "1").lower() not in ("0", "off", "false")


def get_device(device: str = "auto") -> torch.device:
    """``"auto"`` gives CUDA when present, else CPU; ``"cuda"`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device='cuda' was asked for but no CUDA device is available; "
                             "use device='auto' or 'cpu'")
        return torch.device("cuda")
    raise ValueError(f"unknown device {device!r}; valid: 'auto', 'cpu', 'cuda'")


def _version(pkg: str) -> str:
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def provenance(cfg: Any = None, **extra: Any):
    """A two-column table (pandas DataFrame) of what produced a run.

    Args:
        cfg: a :class:`analysis.config.Config` (its profile and parameters are listed).
        **extra: more rows, e.g. ``data=dataset.describe()``.
    """
    import pandas as pd

    rows: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": _version("scipy"),
        "analysis": _version("analysis"),
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
    }
    if cfg is not None:
        d = cfg.as_dict() if hasattr(cfg, "as_dict") else dict(cfg)
        rows.update({f"param {k}": v for k, v in d.items()})
    rows.update(extra)
    return pd.DataFrame({"value": [str(v) for v in rows.values()]}, index=list(rows))
