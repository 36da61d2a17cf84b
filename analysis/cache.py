"""Content-addressed cache of expensive artefacts (trained weights, attack results).

An entry is keyed by a SHA-256 of (a) a JSON rendering of the key (a config dict, with tensors
and arrays hashed by content) and (b) the source code of the functions or modules that
produce it, so an edit to the code invalidates the entry. Entries are written atomically
(temporary file, then rename) with a checksum that is verified on read; a corrupt or truncated
entry is deleted and recomputed, with a warning, and never loaded. Payloads are nested
dicts/lists/tuples of tensors, NumPy arrays, numbers, strings and ``None``, loaded back with
``torch.load(weights_only=True)``.

The store is ``$ANALYSIS_CACHE`` or ``<repo>/.cache/analysis``; ``ANALYSIS_CACHE=off``
disables it. An interrupted run resumes from every entry it had finished.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent
FORMAT = 1


def cache_dir() -> Path | None:
    """The cache folder, or ``None`` when caching is off."""
    env = os.environ.get("ANALYSIS_CACHE")
    if env and env.lower() in ("off", "0", "none", "false"):
        return None
    return Path(env) if env else REPO / ".cache" / "analysis"


def _canon(obj: Any) -> Any:
    """A JSON-able, deterministic rendering of ``obj`` for hashing."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        return {"tensor": hashlib.sha256(t.numpy().tobytes()).hexdigest(),
                "dtype": str(t.dtype), "shape": list(t.shape)}
    if isinstance(obj, np.ndarray):
        a = np.ascontiguousarray(obj)
        return {"ndarray": hashlib.sha256(a.tobytes()).hexdigest(),
                "dtype": str(a.dtype), "shape": list(a.shape)}
    if isinstance(obj, dict):
        return {str(k): _canon(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canon(v) for v in obj]
    if isinstance(obj, float):
        return repr(obj)
    if isinstance(obj, (int, str, bool)) or obj is None:
        return obj
    if hasattr(obj, "cache_key"):
        return _canon(obj.cache_key())
    if hasattr(obj, "as_dict"):
        return _canon(obj.as_dict())
    if callable(obj):
        return code_hash([obj])
    raise TypeError(f"cannot hash {type(obj).__name__} for a cache key")


def code_hash(code: Iterable[Any]) -> str:
    """SHA-256 of the source of each function, class or module in ``code``."""
    h = hashlib.sha256()
    for obj in code:
        try:
            src = inspect.getsource(obj)
        except (TypeError, OSError):
            src = repr(obj)
        h.update(src.encode())
    return h.hexdigest()


def key_hash(name: str, key: Any, code: Iterable[Any] = ()) -> str:
    """The hex digest that names an entry."""
    payload = json.dumps({"name": name, "key": _canon(key), "code": code_hash(code),
                          "format": FORMAT, "torch": torch.__version__.split("+")[0]},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def _encode(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": torch.from_numpy(np.ascontiguousarray(obj))}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: _encode(v) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v) for v in obj]}
    if isinstance(obj, list):
        return [_encode(v) for v in obj]
    return obj


def _decode(obj: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__ndarray__"}:
            return obj["__ndarray__"].numpy()
        if set(obj) == {"__tuple__"}:
            return tuple(_decode(v) for v in obj["__tuple__"])
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    return obj


def _paths(digest: str) -> tuple[Path, Path] | None:
    root = cache_dir()
    if root is None:
        return None
    d = root / digest[:2]
    return d / f"{digest}.pt", d / f"{digest}.sha256"


def load(digest: str) -> tuple[bool, Any]:
    """``(True, payload)`` for a verified entry, ``(False, None)`` when missing or corrupt."""
    paths = _paths(digest)
    if paths is None or not paths[0].exists():
        return False, None
    data_path, sum_path = paths
    try:
        blob = data_path.read_bytes()
        expected = sum_path.read_text().strip()
        if hashlib.sha256(blob).hexdigest() != expected:
            raise ValueError("checksum mismatch")
        payload = torch.load(io.BytesIO(blob), weights_only=True, map_location="cpu")
    except Exception as err:  # noqa: BLE001 - any failure means: recompute
        warnings.warn(f"cache entry {digest[:12]} is corrupt ({err}); recomputing", stacklevel=3)
        for p in paths:
            p.unlink(missing_ok=True)
        return False, None
    return True, _decode(payload)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def store(digest: str, payload: Any) -> None:
    """Write an entry atomically: the data first, then its checksum (the commit mark)."""
    paths = _paths(digest)
    if paths is None:
        return
    buf = io.BytesIO()
    torch.save(_encode(payload), buf)
    blob = buf.getvalue()
    _atomic_write(paths[0], blob)
    _atomic_write(paths[1], hashlib.sha256(blob).hexdigest().encode())


def memo(name: str, key: Any, compute: Callable[[], T], code: Iterable[Any] = ()) -> T:
    """Return the cached result of ``compute()`` for (``name``, ``key``, ``code``), computing
    and storing it on a miss.

    Args:
        name: a readable namespace, e.g. ``"train/rnn_rows"``.
        key: everything the result depends on (config dict, data fingerprint, ...).
        compute: a zero-argument function returning a payload (see module docstring).
        code: functions/classes/modules whose source is part of the key.

    Example:
        >>> out = memo("demo/square", {"x": 3}, lambda: {"y": 9})
    """
    digest = key_hash(name, key, code)
    hit, payload = load(digest)
    if hit:
        return payload
    result = compute()
    store(digest, result)
    return result
