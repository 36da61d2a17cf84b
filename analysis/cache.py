"""Content-addressed cache of expensive artefacts (trained weights, attack results).

An entry is named by a SHA-256 (:func:`key_hash`) of

* the ``name`` and a JSON rendering of the ``key`` (a config dict, with tensors and arrays
  hashed by content);
* the *code* that produces it, transitively: for every function, class or module named in
  ``code`` (and, in :func:`memo`, the ``compute`` function itself), the source of every
  ``analysis`` module it imports, directly or through other ``analysis`` modules (parsed from
  the import statements, including imports inside functions), and of their parent packages.
  Code defined outside ``analysis`` (a notebook cell) is hashed by its own source, and the
  functions, classes and ``analysis`` modules it refers to by global name, closure or default
  argument are followed in the same way. The *values* such code reads from globals, closures
  and defaults are part of the key when they settle a computation by themselves: numbers,
  strings, ``None``, tensors, arrays, :class:`analysis.config.Config` objects (anything with
  ``as_dict``/``cache_key``), objects with a ``fingerprint()`` (data sets) and the weights of
  ``nn.Module`` objects; containers and other objects are named by type only, so pass them in
  ``key``;
* the environment that can change a number: the torch intra-op thread count, the device
  ``"auto"`` resolves to (GPU name or CPU), torch's default dtype, and the Python, NumPy,
  SciPy, torch, scikit-learn and mlxtend versions.

The key is deliberately coarse: an edit to any module in the chain invalidates the entry (an
over-invalidated entry costs a recomputation; a stale one would print an old number).

An entry is one file, ``<digest>.pt``: a 64-character SHA-256 of the payload, a newline, then
the payload bytes. It is written to a temporary file in the same folder and committed with a
single ``os.replace``, so a reader sees either no entry or a whole one, never a half-written
entry, and readers never delete a writer's work in progress. A corrupt entry (checksum
mismatch, truncated) is deleted and recomputed with a warning, and never loaded.

Payloads are nested dicts/lists/tuples of tensors, NumPy arrays (not of dtype ``object``),
NumPy scalars, numbers, strings, ``None`` and :class:`pathlib.Path` objects, loaded back with
``torch.load(weights_only=True)``; :func:`store` raises a :class:`TypeError` naming the place
of anything else (a dataclass, a model object), before writing anything.

The store is ``$ANALYSIS_CACHE`` or ``<repo>/.cache/analysis``; ``ANALYSIS_CACHE=off``
disables it. An interrupted run resumes from every entry it had finished.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.metadata
import inspect
import io
import json
import os
import platform
import tempfile
import types
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path, PurePath
from typing import Any, TypeVar

import numpy as np
import torch

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent
PACKAGE = "analysis"
FORMAT = 2
LIBRARIES = ("numpy", "scipy", "torch", "scikit-learn", "mlxtend")


def cache_dir() -> Path | None:
    """The cache folder, or ``None`` when caching is off."""
    env = os.environ.get("ANALYSIS_CACHE")
    if env and env.lower() in ("off", "0", "none", "false"):
        return None
    return Path(env) if env else REPO / ".cache" / "analysis"


# ----------------------------------------------------------------------------------------------
# Keys: values
# ----------------------------------------------------------------------------------------------
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
    if isinstance(obj, np.generic):
        return _canon(obj.item())
    if isinstance(obj, PurePath):
        return {"path": str(obj)}
    if hasattr(obj, "cache_key"):
        return _canon(obj.cache_key())
    if hasattr(obj, "as_dict"):
        return _canon(obj.as_dict())
    if callable(obj):
        return code_hash([obj])
    raise TypeError(f"cannot hash {type(obj).__name__} for a cache key")


def _value_token(v: Any) -> Any:
    """The part of a value read by notebook code that goes into a key (see module docstring)."""
    if isinstance(v, (bool, int, float, str, np.generic, torch.Tensor, np.ndarray, PurePath)) \
            or v is None:
        return _canon(v)
    if isinstance(v, torch.nn.Module):
        return {"module": type(v).__qualname__, "state": _canon(v.state_dict())}
    if hasattr(v, "cache_key") or hasattr(v, "as_dict"):
        try:
            return _canon(v)
        except TypeError:
            pass
    fp = getattr(v, "fingerprint", None)
    if callable(fp):
        return {"fingerprint": str(fp())}
    return {"type": f"{type(v).__module__}.{type(v).__qualname__}"}


# ----------------------------------------------------------------------------------------------
# Keys: code
# ----------------------------------------------------------------------------------------------
def _read_source(path: Path) -> str:
    """The text of a source file (a seam for tests that edit a module's source)."""
    return path.read_text()


def module_file(modname: str) -> Path | None:
    """The source file of ``analysis`` module ``modname``, or ``None`` if it is not one."""
    parts = modname.split(".")
    if parts[0] != PACKAGE:
        return None
    base = REPO.joinpath(*parts)
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


@functools.lru_cache(maxsize=1024)
def _imports_of_text(modname: str, is_package: bool, text: str) -> frozenset[str]:
    """Names of the ``analysis`` modules that ``text`` (module ``modname``) imports."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return frozenset()
    package = modname if is_package else modname.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)
    return frozenset(m for m in found if module_file(m) is not None)


def module_closure(roots: Iterable[str]) -> list[str]:
    """Every ``analysis`` module that importing ``roots`` runs: the roots, what they import
    (transitively) and the parent packages of each, sorted."""
    todo = [r for r in roots if module_file(r) is not None]
    done: set[str] = set()
    while todo:
        mod = todo.pop()
        if mod in done:
            continue
        done.add(mod)
        parts = mod.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        path = module_file(mod)
        if path is None:
            continue
        todo.extend(_imports_of_text(mod, path.name == "__init__.py", _read_source(path)))
    return sorted(done)


def _code_token(co: types.CodeType) -> str:
    """A deterministic rendering of a code object (when its source cannot be read)."""
    consts = []
    for c in co.co_consts:
        if isinstance(c, types.CodeType):
            consts.append(_code_token(c))
        elif isinstance(c, frozenset):
            consts.append(repr(sorted(map(repr, c))))
        else:
            consts.append(repr(c))
    return repr((co.co_code.hex(), consts, co.co_names, co.co_varnames))


def _source(obj: Any) -> str:
    try:
        return inspect.getsource(obj)
    except (TypeError, OSError):
        co = getattr(obj, "__code__", None)
        if co is not None:
            return _code_token(co)
        return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}"


def _global_names(co: types.CodeType) -> set[str]:
    names = set(co.co_names)
    for c in co.co_consts:
        if isinstance(c, types.CodeType):
            names |= _global_names(c)
    return names


class _CodeWalk:
    """Collects the ``analysis`` modules, outside sources and values that code depends on."""

    def __init__(self) -> None:
        self.modules: set[str] = set()
        self.parts: list[str] = []
        self.seen: set[int] = set()

    def add(self, obj: Any) -> None:
        if id(obj) in self.seen:
            return
        self.seen.add(id(obj))
        if isinstance(obj, functools.partial):
            self.add(obj.func)
            self.value(list(obj.args))
            self.value(dict(obj.keywords))
            return
        if inspect.ismodule(obj):
            if module_file(obj.__name__) is not None:
                self.modules.add(obj.__name__)
            else:
                self.parts.append(f"module {obj.__name__}: {_source(obj)}")
            return
        if inspect.ismethod(obj):
            self.add(obj.__func__)
            self.value(obj.__self__)
            return
        if inspect.isfunction(obj) or inspect.isclass(obj):
            mod = getattr(obj, "__module__", "") or ""
            if module_file(mod) is not None:
                self.modules.add(mod)
                return
            self.parts.append(f"{mod}.{getattr(obj, '__qualname__', '?')}: {_source(obj)}")
            if inspect.isclass(obj):
                for base in obj.__mro__[1:]:
                    if base is not object and module_file(base.__module__ or "") is not None:
                        self.modules.add(base.__module__)
                for attr in vars(obj).values():
                    if inspect.isfunction(attr):
                        self._follow(attr)
            else:
                self._follow(obj)
            return
        if callable(obj) and not isinstance(obj, torch.nn.Module):
            self.add(type(obj))
            self.value(obj)
            return
        self.value(obj)

    def _follow(self, fn: types.FunctionType) -> None:
        """Follow what a function defined outside ``analysis`` refers to."""
        g = fn.__globals__
        for name in sorted(_global_names(fn.__code__)):
            if name in g:
                self.ref(name, g[name])
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
            try:
                self.ref(name, cell.cell_contents)
            except ValueError:  # an empty cell
                continue
        for i, d in enumerate(fn.__defaults__ or ()):
            self.ref(f"default {i}", d)
        for name, d in sorted((fn.__kwdefaults__ or {}).items()):
            self.ref(f"default {name}", d)

    def ref(self, name: str, v: Any) -> None:
        if isinstance(v, functools.partial):
            self.add(v)
            return
        if inspect.ismodule(v) or inspect.isfunction(v) or inspect.isclass(v) \
                or inspect.ismethod(v):
            if inspect.ismodule(v) and module_file(v.__name__) is None:
                return  # a library: its version is in the key
            mod = getattr(v, "__module__", "") or ""
            if not inspect.ismodule(v) and mod.split(".")[0] not in (PACKAGE, "__main__") \
                    and not mod.startswith("__"):
                return  # a library function
            self.add(v)
            return
        if isinstance(v, torch.nn.Module):
            self.add(type(v))
        self.parts.append(f"value {name}: {json.dumps(_value_token(v), sort_keys=True)}")

    def value(self, v: Any) -> None:
        self.parts.append(f"value: {json.dumps(_value_token(v), sort_keys=True)}")

    def digest(self) -> str:
        h = hashlib.sha256()
        for mod in module_closure(self.modules):
            path = module_file(mod)
            h.update(f"\0{mod}\0".encode())
            if path is not None:
                h.update(_read_source(path).encode())
        for part in self.parts:
            h.update(b"\0")
            h.update(part.encode())
        return h.hexdigest()


def code_hash(code: Iterable[Any]) -> str:
    """SHA-256 of the code in ``code`` (functions, classes, modules, callable objects),
    transitively over the ``analysis`` modules it imports (see the module docstring)."""
    walk = _CodeWalk()
    for obj in code:
        walk.add(obj)
    return walk.digest()


def _version(pkg: str) -> str:
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return "-"


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    """Python and library versions (and the torch build, e.g. ``2.13.0+cpu``)."""
    return {"python": platform.python_version(), "torch_build": torch.__version__,
            **{lib: _version(lib) for lib in LIBRARIES}}


def environment() -> dict[str, Any]:
    """What of the running environment can change a result: the torch thread count, the device
    ``"auto"`` resolves to, the default dtype, and the Python and library versions."""
    dev = f"cuda:{torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "cpu"
    return {"threads": torch.get_num_threads(), "device": dev,
            "dtype": str(torch.get_default_dtype()), **versions()}


def key_hash(name: str, key: Any, code: Iterable[Any] = ()) -> str:
    """The hex digest that names an entry: ``name``, ``key``, the code (transitively) and the
    environment (see the module docstring)."""
    payload = json.dumps({"name": name, "key": _canon(key), "code": code_hash(code),
                          "format": FORMAT, "env": environment()}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


# ----------------------------------------------------------------------------------------------
# Payloads
# ----------------------------------------------------------------------------------------------
def _encode(obj: Any, where: str = "payload") -> Any:
    """The payload as ``torch.load(weights_only=True)`` can read it back; a :class:`TypeError`
    naming ``where`` for anything it could not."""
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise TypeError(f"cannot cache {where}: a NumPy array of dtype object")
        return {"__ndarray__": torch.from_numpy(np.ascontiguousarray(obj))}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, PurePath):
        return {"__path__": str(obj)}
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise TypeError(f"cannot cache {where}: key {k!r} of type {type(k).__name__}"
                                " (keys must be str or int)")
            out[k] = _encode(v, f"{where}[{k!r}]")
        return out
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, (bool, int, float, complex, str)) or obj is None:
        return obj
    hint = " (convert it with dataclasses.asdict)" if hasattr(obj, "__dataclass_fields__") else ""
    raise TypeError(f"cannot cache {where}: {type(obj).__module__}.{type(obj).__qualname__} "
                    f"cannot be read back with torch.load(weights_only=True){hint}")


def _decode(obj: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__ndarray__"}:
            return obj["__ndarray__"].numpy()
        if set(obj) == {"__tuple__"}:
            return tuple(_decode(v) for v in obj["__tuple__"])
        if set(obj) == {"__path__"}:
            return Path(obj["__path__"])
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    return obj


def _paths(digest: str) -> tuple[Path] | None:
    """The file(s) of an entry (one file since format 2), or ``None`` when caching is off."""
    root = cache_dir()
    if root is None:
        return None
    return (root / digest[:2] / f"{digest}.pt",)


def _unlink_if_same(path: Path, stat: os.stat_result) -> None:
    """Delete ``path`` unless another process has replaced it since ``stat`` was taken."""
    try:
        now = path.stat()
    except FileNotFoundError:
        return
    if (now.st_ino, now.st_mtime_ns, now.st_size) == (stat.st_ino, stat.st_mtime_ns, stat.st_size):
        path.unlink(missing_ok=True)


def load(digest: str) -> tuple[bool, Any]:
    """``(True, payload)`` for a verified entry, ``(False, None)`` when missing or corrupt."""
    paths = _paths(digest)
    if paths is None:
        return False, None
    path = paths[0]
    try:
        with path.open("rb") as fh:
            stat = os.fstat(fh.fileno())
            raw = fh.read()
    except FileNotFoundError:
        return False, None
    try:
        expected, sep, blob = raw.partition(b"\n")
        if not sep or len(expected) != 64:
            raise ValueError("no checksum header")
        if hashlib.sha256(blob).hexdigest().encode() != expected:
            raise ValueError("checksum mismatch")
        payload = torch.load(io.BytesIO(blob), weights_only=True, map_location="cpu")
    except Exception as err:  # noqa: BLE001 - any failure means: recompute
        warnings.warn(f"cache entry {digest[:12]} is corrupt ({err}); recomputing", stacklevel=3)
        _unlink_if_same(path, stat)
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
    """Write an entry: checksum and payload in one file, committed by one atomic rename.

    Raises:
        TypeError: the payload holds something ``torch.load(weights_only=True)`` cannot read
            back (the message names where); nothing is written.
    """
    encoded = _encode(payload)
    paths = _paths(digest)
    if paths is None:
        return
    buf = io.BytesIO()
    torch.save(encoded, buf)
    blob = buf.getvalue()
    try:
        torch.load(io.BytesIO(blob), weights_only=True, map_location="cpu")
    except Exception as err:  # noqa: BLE001 - the same check the reader will make
        raise TypeError(f"cannot cache payload: torch.load(weights_only=True) fails ({err})") \
            from err
    _atomic_write(paths[0], hashlib.sha256(blob).hexdigest().encode() + b"\n" + blob)


def memo(name: str, key: Any, compute: Callable[[], T], code: Iterable[Any] = ()) -> T:
    """Return the cached result of ``compute()`` for (``name``, ``key``, ``code``), computing
    and storing it on a miss.

    Args:
        name: a readable namespace, e.g. ``"train/rnn_rows"``.
        key: everything the result depends on (config dict, data fingerprint, ...).
        compute: a zero-argument function returning a payload (see module docstring); its own
            code and what it refers to are part of the key.
        code: more functions/classes/modules whose code is part of the key (transitively).

    Example:
        >>> out = memo("demo/square", {"x": 3}, lambda: {"y": 9})
    """
    digest = key_hash(name, key, [*code, compute])
    hit, payload = load(digest)
    if hit:
        return payload
    result = compute()
    store(digest, result)
    return result
