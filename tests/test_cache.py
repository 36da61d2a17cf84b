import dataclasses
import os
import subprocess
import sys
import textwrap
import time
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from analysis import cache

REPO = Path(__file__).resolve().parent.parent


def _payload():
    return {"w": torch.arange(6.0).reshape(2, 3), "a": np.linspace(0, 1, 5),
            "meta": {"n": 3, "name": "x", "none": None}, "pair": (1, 2.5), "hist": [{"e": 1}]}


def test_roundtrip_and_hit(tmp_path, monkeypatch):
    monkeypatch.setenv("ANALYSIS_CACHE", str(tmp_path))
    calls = []

    def compute():
        calls.append(1)
        return _payload()

    first = cache.memo("t/rt", {"k": 1}, compute)
    second = cache.memo("t/rt", {"k": 1}, compute)
    assert len(calls) == 1
    assert torch.equal(first["w"], second["w"])
    np.testing.assert_array_equal(first["a"], second["a"])
    assert isinstance(second["a"], np.ndarray) and second["pair"] == (1, 2.5)
    assert second["meta"] == {"n": 3, "name": "x", "none": None} and second["hist"] == [{"e": 1}]


def test_key_sensitivity(tmp_path, monkeypatch):
    monkeypatch.setenv("ANALYSIS_CACHE", str(tmp_path))
    h = cache.key_hash
    base = h("n", {"a": 1, "b": [1, 2]})
    assert base == h("n", {"b": [1, 2], "a": 1})  # key order does not matter
    assert base != h("n", {"a": 2, "b": [1, 2]})
    assert base != h("m", {"a": 1, "b": [1, 2]})
    assert h("n", {"t": torch.zeros(3)}) != h("n", {"t": torch.zeros(4)})
    assert h("n", {"t": torch.zeros(3)}) != h("n", {"t": torch.tensor([0.0, 0.0, 1e-9])})
    assert h("n", {"x": 1.0}) != h("n", {"x": 1})


# ---- item 1: the key covers the code, transitively, and the environment ----------------------
def _edit_source(monkeypatch, rel: str, old: str, new: str) -> None:
    """Make the cache see ``analysis/<rel>`` with ``old`` replaced by ``new``."""
    target = (REPO / "analysis" / rel).resolve()
    real = cache._read_source
    text = real(target)
    assert old in text, f"{old!r} is not in {rel}: update this test"

    def fake(path: Path) -> str:
        out = real(path)
        return out.replace(old, new) if Path(path).resolve() == target else out

    monkeypatch.setattr(cache, "_read_source", fake)


def test_edit_two_modules_deep_misses(tmp_path, monkeypatch):
    """HessianRegularizer (regularizers/hessian.py) imports helpers from regularizers/jacobian.py:
    doubling the value returned there must change the key of anything that names the class,
    and of the training key built by analysis.train."""
    from analysis import train
    from analysis.regularizers.hessian import HessianRegularizer

    monkeypatch.setenv("ANALYSIS_CACHE", str(tmp_path))

    class Data:
        def fingerprint(self) -> str:
            return "d0"

    reg = HessianRegularizer(0.1)
    key, code = train._key("mlp", {"in_dim": 4}, Data(), train.TrainConfig(epochs=1), reg, None,
                           torch.device("cpu"), False)
    before_train = cache.key_hash("train/mlp", key, code)
    before_cls = cache.key_hash("n", {}, [HessianRegularizer])
    assert before_train == cache.key_hash("train/mlp", key, code)  # the same inputs hit
    _edit_source(monkeypatch, "regularizers/jacobian.py", "return vs, L / vs.shape[1]",
                 "return vs, 2 * L / vs.shape[1]")
    assert cache.key_hash("train/mlp", key, code) != before_train
    assert cache.key_hash("n", {}, [HessianRegularizer]) != before_cls


def test_memo_misses_after_edit_of_imported_module(tmp_path, monkeypatch):
    """A compute function that calls into analysis.autodiff through a module it names."""
    from analysis import autodiff

    monkeypatch.setenv("ANALYSIS_CACHE", str(tmp_path))
    calls = []

    def compute():
        calls.append(1)
        return {"v": 1}

    cache.memo("t/e", {}, compute, code=[autodiff])
    cache.memo("t/e", {}, compute, code=[autodiff])
    assert len(calls) == 1
    _edit_source(monkeypatch, "autodiff.py", "def ", "def  ")
    cache.memo("t/e", {}, compute, code=[autodiff])
    assert len(calls) == 2


def _notebook(src: str) -> dict:
    """Execute ``src`` as a notebook cell would (module ``__main__``, no source file)."""
    ns: dict = {"__name__": "__main__"}
    exec(compile(textwrap.dedent(src), "<cell>", "exec"), ns)  # noqa: S102
    return ns


def test_notebook_code_is_hashed_transitively():
    """A helper defined in a notebook, called by the compute function, is part of the key;
    so are the settings the function reads from notebook globals."""
    cell = """
        from analysis import stats
        seed = 0
        def helper(x):
            return x * 1
        def compute():
            return {"v": helper(seed)}
    """
    a, b = _notebook(cell), _notebook(cell)
    assert cache.key_hash("n", {}, [a["compute"]]) == cache.key_hash("n", {}, [b["compute"]])
    doubled = _notebook(cell.replace("x * 1", "x * 2"))
    assert cache.key_hash("n", {}, [doubled["compute"]]) != cache.key_hash("n", {}, [a["compute"]])
    other_seed = _notebook(cell.replace("seed = 0", "seed = 1"))
    assert cache.key_hash("n", {}, [other_seed["compute"]]) != cache.key_hash(
        "n", {}, [a["compute"]])
    lam = _notebook(textwrap.dedent(cell) + "f = lambda: compute()\n")
    lam2 = _notebook(textwrap.dedent(cell).replace("x * 1", "x * 3") + "f = lambda: compute()\n")
    assert cache.key_hash("n", {}, [lam["f"]]) != cache.key_hash("n", {}, [lam2["f"]])


def test_nested_notebook_closure_reads_config_and_literals():
    """The shape of chapter 05's certificate: a function defined inside a notebook function,
    reading the chapter's Config (seed) from globals and a literal (bisection_steps=8)."""
    cell = """
        from analysis.config import Param, common_schema, validate
        cfg = validate({**common_schema(), "steps": Param(3, kind=int)}, "smoke", {"seed": SEED})
        def certify(m):
            def run():
                return {"v": m * cfg.steps, "b": min(8, cfg.seed)}
            return run
    """
    def key(src: str) -> str:
        return cache.key_hash("n", {}, [_notebook(src)["certify"](2)])

    base = key(cell.replace("SEED", "0"))
    assert base == key(cell.replace("SEED", "0"))
    assert key(cell.replace("SEED", "1")) != base
    assert key(cell.replace("SEED", "0").replace("min(8,", "min(9,")) != base


def test_notebook_code_reaches_analysis_modules(monkeypatch):
    cell = """
        from analysis import stats as st
        def compute():
            return {"v": st}
    """
    before = cache.key_hash("n", {}, [_notebook(cell)["compute"]])
    _edit_source(monkeypatch, "stats.py", "def ", "def  ")
    assert cache.key_hash("n", {}, [_notebook(cell)["compute"]]) != before


def test_thread_count_device_and_versions_are_in_the_key(monkeypatch):
    base = cache.key_hash("n", {"a": 1})
    n = torch.get_num_threads()
    try:
        torch.set_num_threads(n + 1)
        assert cache.key_hash("n", {"a": 1}) != base
    finally:
        torch.set_num_threads(n)
    assert cache.key_hash("n", {"a": 1}) == base
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Some GPU")
    assert cache.key_hash("n", {"a": 1}) != base
    monkeypatch.undo()
    real = cache.versions()
    for lib in ("numpy", "scipy", "torch"):
        with monkeypatch.context() as m:
            m.setattr(cache, "versions", lambda lib=lib: {**real, lib: "0.0"})
            assert cache.key_hash("n", {"a": 1}) != base, lib


def test_module_closure_follows_imports():
    mods = cache.module_closure(["analysis.regularizers.hessian"])
    assert {"analysis", "analysis.regularizers", "analysis.regularizers.jacobian"} <= set(mods)
    assert "analysis.train" not in mods


# ---- corrupt entries ---------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["flip", "truncate", "checksum"])
def test_corrupt_entry_is_recomputed(tmp_path, monkeypatch, damage):
    monkeypatch.setenv("ANALYSIS_CACHE", str(tmp_path))
    box = types.SimpleNamespace(w=torch.ones(100))  # named by type only: one key for all calls

    def compute():
        if box.w is None:
            pytest.fail("must be cached")
        return {"w": box.w}

    cache.memo("t/c", {"k": 2}, compute)
    data = next(tmp_path.rglob("*.pt"))
    blob = bytearray(data.read_bytes())
    if damage == "flip":
        blob[len(blob) // 2] ^= 0xFF
    elif damage == "truncate":
        blob = blob[:50]
    else:
        blob[:64] = b"0" * 64
    data.write_bytes(bytes(blob))
    box.w = torch.full((100,), 7.0)
    with pytest.warns(UserWarning, match="corrupt"):
        out = cache.memo("t/c", {"k": 2}, compute)
    assert torch.equal(out["w"], torch.full((100,), 7.0))
    box.w = None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = cache.memo("t/c", {"k": 2}, compute)
    assert torch.equal(again["w"], out["w"])


def test_no_temp_files_left_and_off_switch(tmp_path, monkeypatch):
    monkeypatch.setenv("ANALYSIS_CACHE", str(tmp_path))
    cache.memo("t/t", {}, lambda: {"v": 1})
    assert not list(tmp_path.rglob(".tmp-*"))
    monkeypatch.setenv("ANALYSIS_CACHE", "off")
    calls = []
    cache.memo("t/t", {}, lambda: calls.append(1) or {"v": 1})
    cache.memo("t/t", {}, lambda: calls.append(1) or {"v": 1})
    assert len(calls) == 2


# ---- item 2: payloads that weights_only cannot read back -------------------------------------
def test_path_payload_is_encoded(tmp_path, monkeypatch):
    monkeypatch.setenv("ANALYSIS_CACHE", str(tmp_path))
    calls = []
    payload = {"where": Path("/data/mnist"), "items": [Path("a/b")]}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(2):
            out = cache.memo("t/p", {}, lambda: calls.append(1) or payload)
    assert len(calls) == 1 and out == payload and isinstance(out["where"], Path)


@dataclasses.dataclass
class _Result:
    x: float


@pytest.mark.parametrize("bad", [_Result(1.0), {"r": [1, _Result(2.0)]},
                                 np.array([object()], dtype=object), {(1, 2): 3}])
def test_unreadable_payload_is_rejected_at_store(tmp_path, monkeypatch, bad):
    monkeypatch.setenv("ANALYSIS_CACHE", str(tmp_path))
    with pytest.raises(TypeError, match="cannot cache payload"):
        cache.memo("t/bad", {}, lambda: bad)
    assert not list(tmp_path.rglob("*.pt")) and not list(tmp_path.rglob(".tmp-*"))


# ---- item 3: a reader never deletes a writer's entry -------------------------------------------
def test_reader_between_write_and_commit_keeps_the_entry(tmp_path, monkeypatch):
    """A writer process is held inside its commit (before each os.replace) while this process
    reads the same entry: the reader must see a miss, delete nothing, and find the whole entry
    once the writer resumes."""
    go, held = tmp_path / "go", tmp_path / "held"
    monkeypatch.setenv("ANALYSIS_CACHE", str(tmp_path / "store"))
    digest = cache.key_hash("t/mp", {})
    writer = textwrap.dedent(f"""
        import os, time
        from pathlib import Path
        real = os.replace
        def slow_replace(src, dst):
            Path({str(held)!r}).write_text(str(dst))
            while not Path({str(go)!r}).exists():
                time.sleep(0.01)
            Path({str(go)!r}).unlink()
            real(src, dst)
        os.replace = slow_replace
        from analysis import cache
        cache.store({digest!r}, {{"v": list(range(1000))}})
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", writer], env=env, cwd=REPO)
    try:
        for _ in range(2):  # the format-1 store committed twice (payload, then checksum)
            t0 = time.time()
            while not held.exists() and proc.poll() is None:
                assert time.time() - t0 < 120, "the writer never reached its commit"
                time.sleep(0.01)
            if proc.poll() is not None:
                break
            held.unlink()
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # no "corrupt entry" while the writer works
                hit, _ = cache.load(digest)
            assert not hit
            go.write_text("1")
        assert proc.wait(timeout=120) == 0
        hit, payload = cache.load(digest)
        assert hit and payload == {"v": list(range(1000))}
    finally:
        if proc.poll() is None:
            proc.kill()
