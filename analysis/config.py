"""Run profiles and parameter validation.

Every chapter declares a *schema*: one :class:`Param` per tunable size, with its value under
the ``smoke`` profile (minutes on a 2-core CPU, used by the nbval tests) and under the ``full``
profile (the book's run). A notebook's ``parameters`` cell holds literals only; it passes them
to :func:`resolve`, which expands the profile, applies the overrides that are not ``None`` and
validates everything, raising a :class:`ValueError` that names the parameter and what is valid.

Chapter schemas live in :mod:`analysis.profiles` (one module per chapter, ``SCHEMA = {...}``).

Example:
    >>> cfg = resolve("00_toolkit", "smoke", seed=1)
    >>> cfg.seed
    1
"""

from __future__ import annotations

import importlib
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PROFILES = ("smoke", "full", "paper")
DEVICES = ("auto", "cpu", "cuda")
RUN_PARAMS = "ANALYSIS_PARAMS"  # set by analysis.run for the kernel: {"chapter": .., "params": ..}


@dataclass(frozen=True)
class Param:
    """One chapter parameter.

    Args:
        smoke: value under the ``smoke`` profile.
        full: value under the ``full`` profile (defaults to ``smoke``).
        paper: value under the ``paper`` profile, the document's own sizes (defaults to
            ``full``); meant for a GPU or a long CPU run, never run by the tests.
        kind: the Python type values must have (``int``, ``float``, ``str``, ``bool``, ``list``,
            ``tuple``); an ``int`` is accepted where ``float`` is asked for.
        low: smallest allowed value (inclusive) for numbers, or for every item of a list.
        high: largest allowed value (inclusive).
        choices: allowed values for strings (or list items).
        positive: shorthand for ``low`` > 0 (strict).
        nullable: ``None`` is a valid value (meaning "not used").
        help: one line for the error messages and the README.
        item: the type of every item of a ``list``/``tuple`` value; ``None`` infers it from the
            defaults (all ``int`` -> ``int``, numbers -> ``float``, all ``str`` -> ``str``).
        finite: numbers (and numeric items) must be finite (no ``inf``).
        check: called with each value (or list item); a ``ValueError`` it raises rejects it
            (for names that no finite ``choices`` list can hold, e.g. ``"C-8"``).
    """

    smoke: Any
    full: Any = field(default=None)
    paper: Any = field(default=None)
    kind: type = float
    low: float | None = None
    high: float | None = None
    choices: Sequence[Any] | None = None
    positive: bool = False
    nullable: bool = False
    help: str = ""
    item: type | None = None
    finite: bool = True
    check: Callable[[Any], Any] | None = None

    def value(self, profile: str) -> Any:
        if profile == "paper" and self.paper is not None:
            return self.paper
        return self.smoke if (profile == "smoke" or self.full is None) else self.full

    def item_kind(self) -> type | None:
        """The type list items must have (explicit ``item``, else inferred from the defaults)."""
        if self.item is not None or self.kind not in (list, tuple):
            return self.item
        defaults = (self.smoke, self.full, self.paper)
        items = [v for d in defaults if isinstance(d, (list, tuple)) for v in d]
        if not items:
            return None
        if all(isinstance(v, bool) for v in items):
            return bool
        if all(isinstance(v, int) and not isinstance(v, bool) for v in items):
            return int
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
            return float
        if all(isinstance(v, str) for v in items):
            return str
        return None


def common_schema(data_sources: Sequence[str] = ("embedded", "torchvision")) -> dict[str, Param]:
    """The parameters every chapter has: ``seed``, ``device`` and ``data_source``.

    ``data_source`` may also be a folder path (IDX files); a string containing ``/`` is passed
    through unchecked here and validated by :func:`analysis.data.load`.
    """
    return {
        "seed": Param(0, kind=int, low=0, help="global random seed"),
        "device": Param("auto", kind=str, choices=DEVICES, help="'auto' = CUDA when present"),
        "data_source": Param(data_sources[0], kind=str, choices=tuple(data_sources),
                             help="where the data set comes from (or a folder of IDX files)"),
    }


class Config(Mapping):
    """A resolved, read-only set of parameters with attribute access."""

    def __init__(self, chapter: str, profile: str, values: dict[str, Any]):
        object.__setattr__(self, "_values", dict(values))
        object.__setattr__(self, "chapter", chapter)
        object.__setattr__(self, "profile", profile)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"config of {self.chapter!r} has no parameter {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Config is read-only; pass overrides to config.resolve")

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (with ``profile``), e.g. for a cache key or a provenance table."""
        return {"profile": self.profile, **self._values}

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"Config({self.chapter}, {self.profile}: {inner})"


def _check(name: str, p: Param, v: Any) -> Any:
    if v is None:
        if p.nullable:
            return None
        raise ValueError(f"parameter {name!r} must not be None ({p.help or p.kind.__name__})")
    kind = p.kind
    if kind is float and isinstance(v, int) and not isinstance(v, bool):
        v = float(v)
    if kind in (list, tuple) and isinstance(v, (list, tuple)):
        v = kind(v)
    if kind is int and isinstance(v, float) and v.is_integer():
        raise ValueError(f"parameter {name!r} must be an int, got float {v!r}")
    if not isinstance(v, kind) or (kind is not bool and isinstance(v, bool)):
        raise ValueError(
            f"parameter {name!r} must be of type {kind.__name__}, got {type(v).__name__} {v!r}"
            + (f" ({p.help})" if p.help else "")
        )
    items = list(v) if isinstance(v, (list, tuple)) else [v]
    ikind = p.item_kind()
    for item in items:
        if ikind is not None and isinstance(v, (list, tuple)):
            ok = isinstance(item, ikind) and (ikind is bool or not isinstance(item, bool))
            if ikind is float and isinstance(item, int) and not isinstance(item, bool):
                ok = True
            if not ok:
                raise ValueError(f"parameter {name!r}: item {item!r} must be of type "
                                 f"{ikind.__name__}, got {type(item).__name__}"
                                 + (f" ({p.help})" if p.help else ""))
        if p.choices is not None and item not in p.choices:
            if isinstance(item, str) and "/" in item and name == "data_source":
                continue  # a folder path, validated by analysis.data
            raise ValueError(f"parameter {name!r} = {item!r} is not one of {list(p.choices)}")
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            if isinstance(item, float) and math.isnan(item):
                raise ValueError(f"parameter {name!r} is NaN")
            if p.finite and isinstance(item, float) and math.isinf(item):
                raise ValueError(f"parameter {name!r} = {item!r} must be finite")
            if p.positive and not item > 0:
                raise ValueError(f"parameter {name!r} = {item!r} must be > 0")
            if p.low is not None and item < p.low:
                raise ValueError(f"parameter {name!r} = {item!r} must be >= {p.low}")
            if p.high is not None and item > p.high:
                raise ValueError(f"parameter {name!r} = {item!r} must be <= {p.high}")
        if p.check is not None:
            try:
                p.check(item)
            except ValueError as err:
                raise ValueError(f"parameter {name!r} = {item!r} is not valid: {err}") from None
    return v


def _pairs(names: Sequence[str]) -> list[tuple[str, str]]:
    """``(low, high)`` name pairs that must be ordered: ``X_min``/``X_max``, ``min_X``/``max_X``."""
    out = []
    for n in names:
        if n.endswith("_min") and n[:-4] + "_max" in names:
            out.append((n, n[:-4] + "_max"))
        if n.startswith("min_") and "max_" + n[4:] in names:
            out.append((n, "max_" + n[4:]))
    return out


def _check_pairs(values: Mapping[str, Any]) -> None:
    for lo, hi in _pairs(list(values)):
        a, b = values[lo], values[hi]
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a > b:
            raise ValueError(f"parameter {lo!r} = {a!r} must be <= {hi!r} = {b!r}")


def validate(schema: Mapping[str, Param], profile: str, overrides: Mapping[str, Any],
             chapter: str = "?") -> Config:
    """Expand ``profile`` with ``schema`` and apply ``overrides`` (``None`` = keep default).

    Raises:
        ValueError: unknown profile, unknown parameter name, wrong type or out-of-range value.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid profiles: {list(PROFILES)}")
    unknown = sorted(set(overrides) - set(schema))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {unknown} for chapter {chapter!r}; valid: {sorted(schema)}"
        )
    values = {}
    for name, p in schema.items():
        v = overrides.get(name)
        values[name] = _check(name, p, p.value(profile) if v is None else v)
    _check_pairs(values)
    return Config(chapter, profile, values)


def schema_for(chapter: str) -> dict[str, Param]:
    """The schema of ``chapter`` (module ``analysis.profiles.<chapter>``, attribute ``SCHEMA``)."""
    try:
        mod = importlib.import_module(f"analysis.profiles.{chapter}")
    except ModuleNotFoundError as err:
        raise ValueError(f"unknown chapter {chapter!r}: no module analysis.profiles.{chapter}") from err
    return dict(mod.SCHEMA)


def run_overrides(chapter: str) -> dict[str, Any]:
    """Parameters that :mod:`analysis.run` passes to ``chapter`` beyond its parameters cell
    (``-p NAME VALUE`` for any schema name), from ``$ANALYSIS_PARAMS``; ``{}`` when unset or
    meant for another chapter."""
    text = os.environ.get(RUN_PARAMS)
    if not text:
        return {}
    spec = json.loads(text)
    return dict(spec.get("params", {})) if spec.get("chapter") == chapter else {}


def resolve(chapter: str, profile: str, **overrides: Any) -> Config:
    """Resolve the parameters of ``chapter`` under ``profile``; ``None`` overrides are ignored.

    Parameters given on the command line of :mod:`analysis.run` that the notebook's parameters
    cell does not name arrive through :func:`run_overrides` and are applied the same way.

    Example:
        ``cfg = resolve("03_peck_bounds", profile, seed=seed, n_train=n_train)``
    """
    extra = {k: v for k, v in run_overrides(chapter).items() if overrides.get(k) is None}
    return validate(schema_for(chapter), profile, {**overrides, **extra}, chapter=chapter)
