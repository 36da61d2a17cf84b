"""The environment is recorded (constraints.txt) and declared (pyproject.toml) exactly."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line.strip())
        if m:
            pins[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(2)
    return pins


def test_constraints_are_the_running_versions():
    """The references are made in this environment: every installed package that the
    constraints pin must have exactly the pinned version (torch: the CPU build)."""
    pins = _constraints()
    assert pins["torch"].endswith("+cpu") and pins["torch"].startswith("2.13.0")
    for core in ("numpy", "scipy", "torch", "jupyter-book", "nbval", "papermill", "nbclient"):
        assert core in pins, core
    wrong = {}
    for name, version in pins.items():
        try:
            have = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        if have != version:
            wrong[name] = (version, have)
    assert wrong == {}, f"constraints.txt differs from the venv (pinned, installed): {wrong}"


def test_torch_is_the_cpu_build():
    assert torch.version.cuda is None and torch.__version__.endswith("+cpu")


def test_pyproject_declares_what_is_used_and_nothing_unused():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    dev = " ".join(meta["project"]["optional-dependencies"]["dev"])
    assert "nbclient" in dev  # analysis.regen imports it
    assert "pytest-xdist" not in dev
    assert "django-static-mathjax" in dev  # MathJax for the offline book
    assert "per-file-ignores" not in meta["tool"]["ruff"].get("lint", {})
    assert "/.whl/" not in (REPO / ".gitignore").read_text()
