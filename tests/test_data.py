"""Tests of analysis.data: splits, IDX files, sources and their errors, synthetic sets."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from analysis import data


# ------------------------------------------------------------------ stratified splitting
def test_stratified_split_exact_counts_and_partition():
    y = np.repeat(np.arange(5), [10, 20, 30, 40, 50])  # 150 points, proportions 1:2:3:4:5
    first, rest = data.stratified_split(y, 30, seed=3)
    assert np.array_equal(np.bincount(y[first], minlength=5), [2, 4, 6, 8, 10])
    assert np.array_equal(np.bincount(y[rest], minlength=5), [8, 16, 24, 32, 40])
    both = np.concatenate([first, rest])
    assert np.array_equal(np.sort(both), np.arange(150))  # a partition: no loss, no repeat


def test_stratified_split_rounding_sums_and_seed():
    y = np.repeat(np.arange(3), [7, 7, 7])
    first, _ = data.stratified_split(y, 10, seed=0)
    counts = np.bincount(y[first], minlength=3)
    assert counts.sum() == 10 and counts.max() - counts.min() <= 1
    again, _ = data.stratified_split(y, 10, seed=0)
    other, _ = data.stratified_split(y, 10, seed=1)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    with pytest.raises(ValueError):
        data.stratified_split(y, 22)


def test_standardize_uses_train_statistics():
    rng = np.random.default_rng(0)
    a = rng.normal(3.0, 2.0, (50, 3))
    a[:, 2] = 1.0  # constant feature: only centred
    b = rng.normal(0.0, 1.0, (10, 3))
    ta, tb = data.standardize(a, b)
    assert np.allclose(ta[:, :2].mean(0), 0) and np.allclose(ta[:, :2].std(0), 1)
    assert np.allclose(ta[:, 2], 0)
    assert np.allclose(tb, (b - a.mean(0)) / np.where(a.std(0) > 0, a.std(0), 1))


# ------------------------------------------------------------------ IDX
@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float32])
def test_idx_roundtrip(tmp_path, suffix, dtype):
    arr = (np.arange(2 * 3 * 4) * 7 % 11).astype(dtype).reshape(2, 3, 4)
    path = tmp_path / f"x-idx3-ubyte{suffix}"
    data.write_idx(path, arr)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")
    back = data.read_idx(path)
    assert back.dtype == np.dtype(dtype) and np.array_equal(back, arr)


def test_idx_header_is_the_official_format(tmp_path):
    labels = np.array([3, 1, 4], dtype=np.uint8)
    path = tmp_path / "l"
    data.write_idx(path, labels)
    assert path.read_bytes() == bytes([0, 0, 8, 1, 0, 0, 0, 3, 3, 1, 4])
    with pytest.raises(ValueError, match="size mismatch"):
        data.parse_idx(bytes([0, 0, 8, 1, 0, 0, 0, 4, 3, 1, 4]))
    with pytest.raises(ValueError, match="magic"):
        data.parse_idx(b"\x1f\x8b\x08\x00")


def _write_idx_folder(folder, n_train=20, n_test=10, gz=True):
    rng = np.random.default_rng(0)
    folder.mkdir()
    ext = ".gz" if gz else ""
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8),
    }
    for stem, a in arrays.items():
        data.write_idx(folder / f"{stem}{ext}", a)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_from_idx_folder(tmp_path, gz):
    arrays = _write_idx_folder(tmp_path / "idx", gz=gz)
    with pytest.raises(ValueError, match="not the official file"):
        data.load("mnist", tmp_path / "idx")  # checksums are verified by default
    ds = data.load("mnist", tmp_path / "idx", verify=False)
    assert ds.x_train.shape == (20, 1, 28, 28) and ds.x_test.shape == (10, 1, 28, 28)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    expected = torch.from_numpy(arrays["train-images-idx3-ubyte"]).float()[:, None] / 255
    assert torch.equal(ds.x_train, expected)
    assert torch.equal(ds.y_test, torch.arange(10))


def test_a_standin_folder_loads_unverified_and_says_so(tmp_path):
    _write_idx_folder(tmp_path / "idx")
    with pytest.raises(ValueError, match="not the official file"):
        data.load("mnist", tmp_path / "idx")  # checked by default: not MNIST's files
    ds = data.load("mnist", f"{data.STANDIN}{tmp_path / 'idx'}")
    assert "stand-in" in ds.note and "stand-in" in ds.describe()
    assert ds.source == str((tmp_path / "idx").resolve())
    assert torch.equal(ds.y_test, torch.arange(10))
    assert data.load("mnist", tmp_path / "idx", verify=False).note == ""


def test_idx_folder_missing_file(tmp_path):
    _write_idx_folder(tmp_path / "idx")
    (tmp_path / "idx" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        data.load("mnist", tmp_path / "idx", verify=False)


# ------------------------------------------------------------------ real sets
def test_mnist_embedded_split_and_cache():
    ds = data.load("mnist")
    assert ds.source == "embedded" and ds.input_shape == (1, 28, 28) and ds.num_classes == 10
    assert np.array_equal(np.bincount(ds.y_train.numpy()), [400] * 10)
    assert np.array_equal(np.bincount(ds.y_test.numpy()), [100] * 10)
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0 and ds.x_train.max() > 0.99
    # train and test are disjoint images of the 5000
    tr = {hashlib.sha1(x.numpy().tobytes()).digest() for x in ds.x_train}
    te = {hashlib.sha1(x.numpy().tobytes()).digest() for x in ds.x_test}
    assert not tr & te
    again = data.load("mnist")
    assert again.fingerprint() == ds.fingerprint()
    again.x_train[0] = 7.0  # mutating a returned tensor must not poison the in-memory cache
    assert data.load("mnist").fingerprint() == ds.fingerprint()
    assert data.load("mnist", seed=1).fingerprint() != ds.fingerprint()


def test_fashion_mnist_debian_verified():
    if not data.DEBIAN_FASHION.is_dir():
        with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
            data.load("fashion_mnist")
        pytest.skip("Debian dataset-fashion-mnist is not installed")
    ds = data.load("fashion_mnist")
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert np.array_equal(np.bincount(ds.y_test.numpy()), [1000] * 10)
    assert ds.classes[9] == "Ankle boot"


@pytest.mark.parametrize("name, d, k", [("iris", 4, 3), ("wine", 13, 3), ("digits", 64, 10)])
def test_sklearn_tables(name, d, k):
    ds = data.load(name)
    assert ds.input_shape == (d,) and ds.num_classes == k and ds.box is None
    n = len(ds.y_train) + len(ds.y_test)
    assert len(ds.y_test) == round(0.25 * n)
    mu, sd = ds.x_train.mean(0), ds.x_train.std(0, unbiased=False)
    assert torch.allclose(mu, torch.zeros(d), atol=1e-5)
    assert torch.allclose(sd[sd > 0], torch.ones(int((sd > 0).sum())), atol=1e-4)
    full = np.bincount(np.concatenate([ds.y_train.numpy(), ds.y_test.numpy()]))
    test = np.bincount(ds.y_test.numpy(), minlength=k)
    assert np.all(np.abs(test - full * len(ds.y_test) / n) < 1)  # stratified


def test_digits_images():
    ds = data.load("digits_images")
    assert ds.input_shape == (1, 8, 8) and ds.box == (0.0, 1.0)
    assert ds.x_train.min() == 0 and ds.x_train.max() == 1


def test_subset_is_stratified_and_deterministic():
    ds = data.load("mnist")
    sub = ds.subset(200, 50, seed=4)
    assert np.array_equal(np.bincount(sub.y_train.numpy()), [20] * 10)
    assert np.array_equal(np.bincount(sub.y_test.numpy()), [5] * 10)
    assert sub.fingerprint() == ds.subset(200, 50, seed=4).fingerprint()
    assert sub.fingerprint() != ds.subset(200, 50, seed=5).fingerprint()
    assert "subset" in sub.describe()
    with pytest.raises(ValueError):
        ds.subset(5000)


# ------------------------------------------------------------------ errors
def test_unknown_name_and_sources():
    with pytest.raises(ValueError, match="unknown data set"):
        data.load("mnsit")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load("mnist", "/nonexistent/folder")
    with pytest.raises(ValueError, match="no default source"):
        data.load("cifar10")
    with pytest.raises(ValueError, match="does not exist for this data set"):
        data.load("fashion_mnist", "embedded")
    with pytest.raises(ValueError, match="unknown source"):
        data.load("iris", "torchvision")


def test_torchvision_source_says_how_to_install(monkeypatch):
    """Without torchvision (hidden here even where it is installed) the error names the
    project's `paper` extra, which pins the torchvision built for our torch."""
    import sys

    monkeypatch.setitem(sys.modules, "torchvision", None)  # import torchvision -> ImportError
    with pytest.raises(ValueError, match=r"pip install -e '\.\[paper\]'"):
        data.load("mnist", "torchvision")


def test_paper_extra_pins_the_torchvision_of_our_torch():
    import tomllib

    meta = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    deps = meta["project"]["dependencies"]
    extras = meta["project"]["optional-dependencies"]
    assert "torch==2.13.0" in deps
    assert extras["paper"] == ["torchvision==0.28.0"]  # the release built against torch 2.13.0


def test_cifar10_folder(tmp_path):
    import pickle

    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
                 b"labels": list(range(4))}
        with (folder / name).open("wb") as fh:
            pickle.dump(batch, fh)
    ds = data.load("cifar10", tmp_path)
    assert ds.x_train.shape == (20, 3, 32, 32) and ds.x_test.shape == (4, 3, 32, 32)
    raw = pickle.loads((folder / "test_batch").read_bytes())[b"data"]
    assert torch.equal(ds.x_test[1, 2].flatten() * 255, torch.tensor(raw[1, 2048:], dtype=torch.float32))
    (folder / "test_batch").unlink()
    data._raw.cache_clear()  # the raw arrays are cached in memory by source
    with pytest.raises(FileNotFoundError, match="cifar-10-python"):
        data.load("cifar10", tmp_path)


# ------------------------------------------------------------------ synthetic
@pytest.mark.parametrize("kind", data.SYNTHETIC_KINDS)
def test_synthetic_seeded(kind):
    dim = 57 if kind == "spambase_like" else 4
    a = data.synthetic(kind, 120, dim, seed=2)
    b = data.synthetic(kind, 120, dim, seed=2)
    c = data.synthetic(kind, 120, dim, seed=3)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    assert a.x_train.shape == (120, dim) and a.x_test.shape == (30, dim)
    assert set(a.y_train.tolist()) == {0, 1}


def test_synthetic_linear_has_margin_and_errors():
    from sklearn.svm import SVC

    ds = data.synthetic("linear", 300, 3, seed=0, noise=0.2, standardized=False)
    # every point lies at least `noise` = 0.2 from a hyperplane through 0, so the hard-margin
    # SVM separates all points with a geometric margin >= 0.2; without the removal of close
    # points the margin of 375 uniform points in [-1, 1]^3 is about 0.01
    x = torch.cat([ds.x_train, ds.x_test]).double().numpy()
    y = torch.cat([ds.y_train, ds.y_test]).numpy()
    svm = SVC(kernel="linear", C=1e8).fit(x, y)
    assert svm.score(x, y) == 1.0
    margin = 1.0 / np.linalg.norm(svm.coef_)
    assert 0.2 * (1 - 1e-6) <= margin < 0.25, margin
    with pytest.raises(ValueError, match="unknown synthetic kind"):
        data.synthetic("spirals")
    blobs = data.synthetic("blobs", 90, 3, num_classes=3)
    assert np.array_equal(np.bincount(blobs.y_train.numpy()), [30, 30, 30])


def test_raw_loading_is_cached():
    data.load("iris")
    before = data._raw.cache_info().hits
    data.load("iris")
    assert data._raw.cache_info().hits == before + 1
