"""Shared test set-up: unit tests never touch the repository's cache or records."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("ANALYSIS_PROGRESS", "0")
os.environ.setdefault("MPLBACKEND", "Agg")
torch.set_num_threads(int(os.environ.get("ANALYSIS_THREADS", "1")))


@pytest.fixture(autouse=True)
def _isolated_artefacts(tmp_path_factory, monkeypatch):
    """Point the cache, the verdict records and the run log of every Python test at a temporary
    folder."""
    root = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("ANALYSIS_CACHE", str(root / "cache"))
    monkeypatch.setenv("ANALYSIS_RECORDS", str(root / "records"))
    monkeypatch.setenv("ANALYSIS_TIMINGS", str(root / "timings.tsv"))


@pytest.fixture(autouse=True)
def _thread_count_restored():
    """Tests run on the thread count set above (one: tiny models, a shared machine); a test
    that changes it (e.g. to show that the thread count is in a cache key) cannot leak it."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _default_dtype_restored():
    """No test leaks a changed default dtype into the next one."""
    old = torch.get_default_dtype()
    yield
    torch.set_default_dtype(old)
