import warnings

import numpy as np
import pytest
import torch

from analysis import cache


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


def test_code_change_invalidates(tmp_path, monkeypatch):
    monkeypatch.setenv("ANALYSIS_CACHE", str(tmp_path))

    def f1():
        return 1

    def f2():
        return 2

    assert cache.key_hash("n", {}, code=[f1]) != cache.key_hash("n", {}, code=[f2])


@pytest.mark.parametrize("damage", ["flip", "truncate", "checksum"])
def test_corrupt_entry_is_recomputed(tmp_path, monkeypatch, damage):
    monkeypatch.setenv("ANALYSIS_CACHE", str(tmp_path))
    cache.memo("t/c", {"k": 2}, lambda: {"w": torch.ones(100)})
    data = next(tmp_path.rglob("*.pt"))
    if damage == "flip":
        blob = bytearray(data.read_bytes())
        blob[len(blob) // 2] ^= 0xFF
        data.write_bytes(bytes(blob))
    elif damage == "truncate":
        data.write_bytes(data.read_bytes()[:50])
    else:
        data.with_suffix(".sha256").write_text("0" * 64)
    with pytest.warns(UserWarning, match="corrupt"):
        out = cache.memo("t/c", {"k": 2}, lambda: {"w": torch.full((100,), 7.0)})
    assert torch.equal(out["w"], torch.full((100,), 7.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = cache.memo("t/c", {"k": 2}, lambda: pytest.fail("must be cached"))
    assert torch.equal(again["w"], out["w"])


def test_missing_checksum_means_unfinished_write(tmp_path, monkeypatch):
    monkeypatch.setenv("ANALYSIS_CACHE", str(tmp_path))
    cache.memo("t/m", {}, lambda: {"v": 1})
    next(tmp_path.rglob("*.sha256")).unlink()
    with pytest.warns(UserWarning, match="corrupt"):
        assert cache.memo("t/m", {}, lambda: {"v": 2}) == {"v": 2}


def test_no_temp_files_left_and_off_switch(tmp_path, monkeypatch):
    monkeypatch.setenv("ANALYSIS_CACHE", str(tmp_path))
    cache.memo("t/t", {}, lambda: {"v": 1})
    assert not list(tmp_path.rglob(".tmp-*"))
    monkeypatch.setenv("ANALYSIS_CACHE", "off")
    calls = []
    cache.memo("t/t", {}, lambda: calls.append(1) or {"v": 1})
    cache.memo("t/t", {}, lambda: calls.append(1) or {"v": 1})
    assert len(calls) == 2
