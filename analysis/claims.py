"""Claims of the documents, judged by named rules: the status comes from a rule, never by hand.

A chapter declares each claim once::

    gain = stats.bootstrap_diff_ci(robust_hr, robust_none)      # paired, same points
    c = claims.Claim("Fig 10: HR beats no regularisation", "HR > none",
                     claims.at_least(gain, 0.0), section="fig-10")

and the claim's status is the one its rule returns. The rules are pure functions of an
:class:`~analysis.stats.Estimate` (or of counts) that return a :class:`Status`: the status, a
reason that names the numbers that decided it, the rule's name and its tolerance, and the
estimate judged.

Status vocabulary (:data:`STATUSES`; :data:`LEGEND` says exactly what decides each, for the
scorecard):

* **reproduced**: the whole interval lies on the claim's side of the decision (or inside the
  tolerance band around the document's number); an exact check holds; no violation in ``n``.
* **partly**: a composite claim some of whose parts are reproduced and others not.
* **not reproduced**: the whole interval lies on the wrong side (or outside the band).
* **inconclusive**: the interval straddles or touches the decision: at our scale the data cannot
  tell; a larger sample (or more seeds) would decide.
* **refuted**: only by a counterexample (a verified point where a claimed bound or theorem
  fails) or an error in the document's proof; never by a statistical miss.
* **not testable**: we cannot test it, and the reason names what is missing.

:func:`find_typed_statuses` is the checker that a notebook types no status by hand.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from analysis.stats import Estimate, binomial_upper

REPRODUCED = "reproduced"
PARTLY = "partly"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"
REFUTED = "refuted"
NOT_TESTABLE = "not testable"
STATUSES = (REPRODUCED, PARTLY, NOT_REPRODUCED, INCONCLUSIVE, REFUTED, NOT_TESTABLE)

#: What decides each status: the scorecard's legend.
LEGEND = {
    REPRODUCED: "the whole confidence interval of our estimate lies on the claim's side of the "
                "decision threshold, or inside the stated tolerance band around the document's "
                "number; for a bound, no violation in n points (the binomial upper limit on the "
                "violation rate is given); for an exact computation, the check holds",
    PARTLY: "a composite claim: some of its parts are reproduced (or partly) and others are not",
    NOT_REPRODUCED: "the whole confidence interval lies on the wrong side of the threshold, or "
                    "outside the tolerance band (disjoint from it); an exact check fails",
    INCONCLUSIVE: "the confidence interval straddles or touches the threshold or an edge of the "
                  "band: at our scale the data cannot decide; more points or seeds would",
    REFUTED: "a counterexample (a verified point where a claimed bound or theorem fails) or an "
             "error in the document's proof; a statistical miss is never a refutation",
    NOT_TESTABLE: "we cannot test the claim with what we have; the note names what is missing",
}


def legend_md() -> str:
    """The legend as a MyST/Markdown definition table (``| status | decided by |``)."""
    rows = ["| status | decided by |", "|---|---|"]
    rows += [f"| **{s}** | {LEGEND[s]} |" for s in STATUSES]
    return "\n".join(rows) + "\n"


@dataclass(frozen=True)
class Status:
    """What a rule makes of a claim.

    Build one only through a rule of this module (:func:`at_least`, :func:`within`, ...).

    Attributes:
        label: one of :data:`STATUSES`.
        reason: the numbers and the comparison that decided it, in words.
        rule: the rule's name, e.g. ``"at_least"``.
        tolerance: the rule's parameters in words, e.g. ``"threshold 0"`` or ``"rel 0.1"``.
        estimate: the estimate judged (None for rules on booleans or counts without one).
        parts: the statuses of the parts of a composite rule.
    """

    label: str
    reason: str
    rule: str
    tolerance: str = ""
    estimate: Estimate | None = None
    parts: tuple[Status, ...] = ()

    def __post_init__(self) -> None:
        if self.label not in STATUSES:
            raise ValueError(f"status {self.label!r} is not one of {list(STATUSES)}")
        if not self.reason:
            raise ValueError("a status needs a reason")


def _g(x: float) -> str:
    return f"{x:.3g}"


def _interval(e: Estimate) -> str:
    return f"[{_g(e.low)}, {_g(e.high)}]"


def _iv(e: Estimate) -> str:
    """The estimate in words: ``value [low, high]``, or the value alone when exact."""
    return _g(e.value) if e.method == "exact" else f"{_g(e.value)} {_interval(e)}"


def _check_estimate(e: Any, rule: str) -> Estimate:
    if not isinstance(e, Estimate):
        raise TypeError(f"{rule} judges an analysis.stats.Estimate, got {type(e).__name__}: "
                        "wrap an exact number with stats.exact(value)")
    return e


def _check_number(x: Any, name: str, rule: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)) and not hasattr(x, "__float__"):
        raise TypeError(f"{rule}: {name} must be a number, got {type(x).__name__}")
    x = float(x)
    if math.isnan(x):
        raise ValueError(f"{rule}: {name} is NaN")
    return x


def at_least(estimate: Estimate, threshold: float = 0.0) -> Status:
    """"The quantity exceeds ``threshold``" (e.g. "A beats B": a difference above 0).

    Args:
        estimate: the estimate with its interval (e.g. a paired difference A - B).
        threshold: the decision threshold, in the estimate's units.

    Returns:
        reproduced if ``low > threshold``; not reproduced if ``high < threshold``;
        inconclusive otherwise, including an interval that touches the threshold
        (``low == threshold`` or ``high == threshold``: equality is not excluded).

    Raises:
        TypeError: ``estimate`` is not an :class:`~analysis.stats.Estimate`.
        ValueError: ``threshold`` is NaN.
    """
    e = _check_estimate(estimate, "at_least")
    t = _check_number(threshold, "threshold", "at_least")
    tol = f"threshold {_g(t)}"
    iv = _iv(e)
    if e.low > t:
        return Status(REPRODUCED, f"{iv} lies above {_g(t)}", "at_least", tol, e)
    if e.high < t:
        return Status(NOT_REPRODUCED, f"{iv} lies below {_g(t)}", "at_least", tol, e)
    return Status(INCONCLUSIVE, f"{iv} contains or touches {_g(t)}", "at_least", tol, e)


def at_least_tested(estimate: Estimate, threshold: float, p_value: float,
                    alpha: float = 0.025, test: str = "exact test") -> Status:
    """:func:`at_least`, where "reproduced" also needs a one-sided test at level ``alpha``.

    For an estimate from so few units that its bootstrap interval can collapse onto one value
    (e.g. Spearman's ρ over 4 nets: a perfect order survives every resample, interval [1, 1],
    while the exact permutation test can reach only p = 1/24 > 0.025). The interval decides
    as in :func:`at_least`; an interval above ``threshold`` with ``p_value > alpha`` is
    inconclusive (too few units to exclude chance).

    Args:
        estimate: the estimate with its interval. threshold: as in :func:`at_least`.
        p_value: the one-sided p-value of ``test`` against "no effect". alpha: its level
            (0.025 = the one-sided side of a 95 % interval). test: its name, for the reason.
    """
    s = at_least(estimate, threshold)
    p = _check_number(p_value, "p_value", "at_least_tested")
    a = _check_number(alpha, "alpha", "at_least_tested")
    if s.label == REPRODUCED and p > a:
        return Status(INCONCLUSIVE, f"{_iv(s.estimate)} lies above {_g(threshold)}"
                      f" but the {test} gives p = {_g(p)} > {_g(a)} (too few units to exclude "
                      "chance)", "at_least_tested", f"threshold {_g(threshold)}, {test} p ≤ "
                      f"{_g(a)}", s.estimate)
    return s


def at_most(estimate: Estimate, threshold: float = 0.0) -> Status:
    """"The quantity is below ``threshold``" (e.g. "A lowers the norm": A - B below 0).

    Returns:
        reproduced if ``high < threshold``; not reproduced if ``low > threshold``;
        inconclusive otherwise (an interval touching the threshold included).
    """
    e = _check_estimate(estimate, "at_most")
    t = _check_number(threshold, "threshold", "at_most")
    tol = f"threshold {_g(t)}"
    iv = _iv(e)
    if e.high < t:
        return Status(REPRODUCED, f"{iv} lies below {_g(t)}", "at_most", tol, e)
    if e.low > t:
        return Status(NOT_REPRODUCED, f"{iv} lies above {_g(t)}", "at_most", tol, e)
    return Status(INCONCLUSIVE, f"{iv} contains or touches {_g(t)}", "at_most", tol, e)


def _band(e: Estimate, lo: float, hi: float, rule: str, tol: str, what: str) -> Status:
    iv = _iv(e)
    band = f"[{_g(lo)}, {_g(hi)}]"
    if lo <= e.low and e.high <= hi:
        return Status(REPRODUCED, f"{iv} lies inside {band} ({what})", rule, tol, e)
    if e.high < lo or e.low > hi:
        return Status(NOT_REPRODUCED, f"{iv} lies outside {band} ({what})", rule, tol, e)
    return Status(INCONCLUSIVE, f"{iv} straddles an edge of {band} ({what})", rule, tol, e)


def within(estimate: Estimate, paper: float, rel: float, abs_tol: float = 0.0) -> Status:
    """"Our number matches the document's": inside ``paper ± max(rel |paper|, abs_tol)``.

    The band is closed. reproduced if the whole interval lies in the band; not reproduced if the
    interval and the band are disjoint; inconclusive if the interval crosses or touches an edge
    from outside (part in, part out). An exact estimate (zero width) is in or out.

    Args:
        estimate: our estimate.
        paper: the document's value.
        rel: relative tolerance, ``>= 0`` (0.1 = 10 %).
        abs_tol: absolute tolerance, ``>= 0`` (needed when ``paper`` is 0).

    Raises:
        ValueError: NaN, negative tolerances, or a zero-width band (``paper == 0`` and
            ``abs_tol == 0``).
    """
    e = _check_estimate(estimate, "within")
    p = _check_number(paper, "paper", "within")
    rel = _check_number(rel, "rel", "within")
    abs_tol = _check_number(abs_tol, "abs_tol", "within")
    if rel < 0 or abs_tol < 0:
        raise ValueError(f"within: tolerances must be >= 0, got rel={rel}, abs_tol={abs_tol}")
    half = max(rel * abs(p), abs_tol)
    if half == 0:
        raise ValueError("within: the band has zero width (paper 0 needs abs_tol > 0)")
    tol = f"rel {_g(rel)}" + (f", abs {_g(abs_tol)}" if abs_tol else "")
    return _band(e, p - half, p + half, "within", tol, f"document {_g(p)}")


def within_orders(estimate: Estimate, paper: float, k: float) -> Status:
    """"Same order of magnitude": inside ``[paper / 10^k, paper * 10^k]``, for positive values.

    Same decision as :func:`within` on that band: an interval reaching 0 or below extends below
    every positive band, so it is at best inconclusive.

    Args:
        estimate: our estimate (a positive quantity: a ratio, a norm).
        paper: the document's value, ``> 0``.
        k: tolerance in decades, ``> 0`` (1 = within a factor 10).

    Raises:
        ValueError: ``paper <= 0``, ``k <= 0`` or NaN.
    """
    e = _check_estimate(estimate, "within_orders")
    p = _check_number(paper, "paper", "within_orders")
    k = _check_number(k, "k", "within_orders")
    if p <= 0 or k <= 0:
        raise ValueError(f"within_orders needs paper > 0 and k > 0, got {p}, {k}")
    return _band(e, p / 10**k, p * 10**k, "within_orders", f"{_g(k)} orders of magnitude",
                 f"document {_g(p)}")


def zero_of(violations: int, n: int, level: float = 0.95,
            max_rate: float | None = None) -> Status:
    """"The bound never fails": ``violations`` verified failures among ``n`` points.

    Each counted violation must be a verified counterexample (beyond the numerical tolerance the
    caller applies), so one is enough to refute. With none, the one-sided binomial upper limit
    on the violation rate says how rare a failure could still be.

    Args:
        violations: number of points where the bound failed, ``0 <= violations <= n``.
        n: number of points tested, ``>= 1``.
        level: confidence level of the upper limit.
        max_rate: if given, reproduced also needs the upper limit ``<= max_rate``; above it the
            claim is inconclusive (too few points to show failures are that rare).

    Returns:
        refuted if ``violations > 0``; otherwise reproduced (or inconclusive, see
        ``max_rate``). The status's estimate is the violation rate with ``[0, upper]``.
    """
    if isinstance(violations, bool) or isinstance(n, bool):
        raise TypeError("zero_of takes counts, not booleans")
    up = binomial_upper(violations, n, level)
    tol = f"0 violations; upper limit at {_g(level)}" + (
        f" <= {_g(max_rate)}" if max_rate is not None else "")
    if max_rate is not None:
        max_rate = _check_number(max_rate, "max_rate", "zero_of")
    k, n = int(violations), int(n)
    if k > 0:
        return Status(REFUTED, f"{k} violation(s) in {n} points (each a counterexample)",
                      "zero_of", tol, up)
    why = f"0 violations in {n} points; violation rate < {_g(up.high)} at {_g(level)}"
    if max_rate is not None and up.high > max_rate:
        return Status(INCONCLUSIVE, f"{why}, above the {_g(max_rate)} asked: more points "
                      "needed", "zero_of", tol, up)
    return Status(REPRODUCED, why, "zero_of", tol, up)


def counterexample(found: bool, description: str, otherwise: Status | None = None) -> Status:
    """A refutation by a concrete counterexample.

    Args:
        found: whether the counterexample was found and verified.
        description: what it is (the instance and the numbers), or how it was searched for.
        otherwise: the status to give when none was found (e.g. :func:`zero_of` on the search
            grid); without it, a failed search is inconclusive (absence is not proof).

    Returns:
        refuted if ``found``; else ``otherwise`` or inconclusive.
    """
    if not description:
        raise ValueError("counterexample needs a description")
    if bool(found):
        return Status(REFUTED, f"counterexample: {description}", "counterexample")
    if otherwise is not None:
        if not isinstance(otherwise, Status):
            raise TypeError("counterexample: otherwise must be a Status from a rule")
        return otherwise
    return Status(INCONCLUSIVE, f"no counterexample found ({description}); absence is not "
                  "proof", "counterexample")


def proof_error(description: str) -> Status:
    """A refutation by an error in the document's proof (named: step, what fails, the fix)."""
    if not description:
        raise ValueError("proof_error needs a description of the error")
    return Status(REFUTED, f"proof error: {description}", "proof_error")


def holds(condition: bool, description: str) -> Status:
    """An exact, deterministic check (no sampling noise): reproduced if it holds, else not.

    For a computation whose result has no sampling uncertainty (an identity checked to rounding,
    a closed form evaluated). Statistical comparisons use :func:`at_least` or :func:`within`.

    Args:
        condition: the check's result.
        description: what was checked, with its numbers.
    """
    if not description:
        raise ValueError("holds needs a description of the check")
    if bool(condition):
        return Status(REPRODUCED, f"holds: {description}", "holds")
    return Status(NOT_REPRODUCED, f"fails: {description}", "holds")


def not_testable(reason: str) -> Status:
    """A claim we cannot test; ``reason`` names what is missing (data, code, a definition)."""
    if not reason or not reason.strip():
        raise ValueError("not_testable needs a reason naming what is missing")
    return Status(NOT_TESTABLE, reason, "not_testable")


def _parts(parts: Sequence[Status], rule: str) -> tuple[Status, ...]:
    if len(parts) == 1 and isinstance(parts[0], (list, tuple)):
        parts = tuple(parts[0])
    if not parts:
        raise ValueError(f"{rule} needs at least one part")
    for p in parts:
        if not isinstance(p, Status):
            raise TypeError(f"{rule}: every part must be a Status from a rule, got "
                            f"{type(p).__name__}")
    return tuple(parts)


def _summary(parts: tuple[Status, ...]) -> str:
    return "; ".join(f"part {i + 1} {p.label} ({p.reason})" for i, p in enumerate(parts))


def _none_hold(parts: tuple[Status, ...], rule: str, tol: str, refuted_if_any: bool) -> Status:
    labels = {p.label for p in parts}
    if REFUTED in labels and (refuted_if_any or labels == {REFUTED}):
        label = REFUTED
    elif INCONCLUSIVE in labels:
        label = INCONCLUSIVE
    elif NOT_REPRODUCED in labels:
        label = NOT_REPRODUCED
    elif labels == {NOT_TESTABLE}:
        label = NOT_TESTABLE
    else:  # refuted and not-testable parts of a disjunction
        label = INCONCLUSIVE
    return Status(label, _summary(parts), rule, tol, parts=parts)


def all_of(*parts: Status) -> Status:
    """A conjunction: the claim holds if every part holds.

    Decision, in order: a refuted part refutes the whole (a counterexample to one part is one to
    the conjunction); all parts reproduced: reproduced; some parts reproduced or partly (and
    not all reproduced): partly; none holding even in part: inconclusive if any part is,
    else not reproduced if any part is, else not testable.

    Args:
        parts: statuses from rules (or one list of them).
    """
    ps = _parts(parts, "all_of")
    tol = f"{len(ps)} parts, all must hold"
    labels = [p.label for p in ps]
    if REFUTED in labels:
        return Status(REFUTED, _summary(ps), "all_of", tol, parts=ps)
    if all(lb == REPRODUCED for lb in labels):
        return Status(REPRODUCED, _summary(ps), "all_of", tol, parts=ps)
    if any(lb in (REPRODUCED, PARTLY) for lb in labels):
        return Status(PARTLY, _summary(ps), "all_of", tol, parts=ps)
    return _none_hold(ps, "all_of", tol, refuted_if_any=True)


def any_of(*parts: Status) -> Status:
    """A disjunction: the claim holds if at least one part holds.

    Decision, in order: any part reproduced: reproduced; else any partly: partly; else all
    refuted: refuted; else inconclusive if any part is, not reproduced if any is, not testable
    if all are (a mix of refuted and not-testable parts is inconclusive).
    """
    ps = _parts(parts, "any_of")
    tol = f"{len(ps)} parts, one must hold"
    labels = [p.label for p in ps]
    if REPRODUCED in labels:
        return Status(REPRODUCED, _summary(ps), "any_of", tol, parts=ps)
    if PARTLY in labels:
        return Status(PARTLY, _summary(ps), "any_of", tol, parts=ps)
    return _none_hold(ps, "any_of", tol, refuted_if_any=False)


def graded(strict: Status, weak: Status) -> Status:
    """A claim with a strong and a weak reading (e.g. "far more robust": >= 20 pts vs > 0).

    Returns:
        reproduced if ``strict`` is; partly if only ``weak`` is reproduced; refuted if either
        is; otherwise ``weak``'s status (inconclusive, not reproduced or not testable).
    """
    ps = _parts((strict, weak), "graded")
    tol = "strict reading, else weak reading"
    if strict.label == REPRODUCED:
        return Status(REPRODUCED, f"strict reading holds: {strict.reason}", "graded", tol,
                      strict.estimate, ps)
    if REFUTED in (strict.label, weak.label):
        return Status(REFUTED, _summary(ps), "graded", tol, strict.estimate, ps)
    if weak.label == REPRODUCED:
        return Status(PARTLY, f"only the weak reading holds: {weak.reason}; strict: "
                      f"{strict.reason}", "graded", tol, weak.estimate, ps)
    return Status(weak.label, _summary(ps), "graded", tol, weak.estimate, ps)


def _finite(x: float) -> float | None:
    """``x`` as a float, or None when it is infinite (JSON has no infinity)."""
    return float(x) if math.isfinite(x) else None


@dataclass(frozen=True)
class Claim:
    """One claim of a document, declared once; its status is the rule's.

    Attributes:
        text: the claim, in the document's terms (with its figure / table / theorem).
        document_value: the document's number or statement (what it reports).
        rule: the :class:`Status` a rule of this module returned (it carries the estimate).
        section: anchor of the chapter section that shows the evidence (MyST label).
        note: context for readers (scale, caveats); the reason is added automatically.
    """

    text: str
    document_value: Any
    rule: Status
    section: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.rule, Status):
            raise TypeError(f"Claim {self.text!r}: the status must come from a rule of "
                            "analysis.claims (at_least, within, zero_of, ...), not be typed: "
                            f"got {self.rule!r}")
        if not self.text:
            raise ValueError("a claim needs its text")

    @property
    def status(self) -> str:
        """The status label the rule gave."""
        return self.rule.label

    @property
    def estimate(self) -> Estimate | None:
        """The estimate the rule judged (None for rules without one)."""
        return self.rule.estimate

    def record(self, profile: str) -> dict[str, Any]:
        """The claim as a JSON-ready dict for the scorecard.

        Keeps the keys :class:`analysis.report.Verdict` records have (``claim``, ``paper``,
        ``ours``, ``status``, ``note``, numbers as 3-significant-figure text), and adds
        ``estimate``, ``low``, ``high``, ``level``, ``interval`` (text), ``n_points``,
        ``n_seeds``, ``method``, ``degenerate``, ``rule``, ``tolerance``, ``reason``,
        ``profile`` and ``section``. A rule without an estimate gives ``None`` for the numbers.

        Args:
            profile: the run profile (``"smoke"``, ``"full"``).
        """
        from analysis.report import sig3

        e = self.estimate
        rec = {
            "claim": self.text,
            "paper": sig3(self.document_value),
            "ours": sig3(e.value) if e is not None else self.rule.reason,
            "status": self.status,
            "note": "; ".join(s for s in (self.note, self.rule.reason) if s),
            "estimate": _finite(e.value) if e else None,
            "low": _finite(e.low) if e else None,
            "high": _finite(e.high) if e else None,
            "level": e.level if e else None,
            "interval": f"[{sig3(e.low)}, {sig3(e.high)}]" if e else "",
            "n_points": e.n_points if e else None,
            "n_seeds": e.n_seeds if e else None,
            "method": e.method if e else "",
            "degenerate": e.degenerate if e else False,
            "estimate_note": e.note if e else "",
            "rule": self.rule.rule,
            "tolerance": self.rule.tolerance,
            "reason": self.rule.reason,
            "parts": [p.label for p in self.rule.parts],
            "part_estimates": [_part_record(p) for p in self.rule.parts],
            "profile": profile,
            "section": self.section,
        }
        return rec


def _part_record(part: Status) -> dict[str, Any]:
    """A part of a composite rule as the scorecard shows it: its status and, when the part's
    rule judged an estimate, that estimate with its interval, points and seeds."""
    from analysis.report import sig3

    e = part.estimate
    return {"status": part.label, "rule": part.rule,
            "estimate": sig3(e.value) if e is not None else "",
            "interval": f"[{sig3(e.low)}, {sig3(e.high)}]" if e is not None else "",
            "n_points": e.n_points if e is not None else None,
            "n_seeds": e.n_seeds if e is not None else None}


def claims_table(claims: Sequence[Claim], profile: str):
    """A pandas DataFrame of the claims (the chapter's verdict table)."""
    import pandas as pd

    cols = ("claim", "paper", "ours", "interval", "n_points", "n_seeds", "rule", "status",
            "note")
    return pd.DataFrame([{k: c.record(profile)[k] for k in cols} for c in claims])


def save_claims(chapter: str, title: str, claims: Sequence[Claim], profile: str):
    """Save the claims as the chapter's verdict records and return the table.

    Writes ``<records>/<chapter>.verdicts.json`` in the format of
    :func:`analysis.report.save_verdicts` (the same top-level keys; each item a
    :meth:`Claim.record`), so the scorecard reads either.
    """
    import os

    from analysis.report import records_dir

    path = records_dir() / f"{chapter}.verdicts.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"chapter": chapter, "title": title, "profile": profile,
                               "items": [c.record(profile) for c in claims]}, indent=1))
    os.replace(tmp, path)
    return claims_table(claims, profile)


# ---------------------------------------------------------------- checker: no typed statuses

_STATUS_WORDS = {s.lower() for s in STATUSES} | {"not_reproduced", "not_testable"}
_STATUS_NAMES = {"REPRODUCED", "PARTLY", "NOT_REPRODUCED", "INCONCLUSIVE", "REFUTED",
                 "NOT_TESTABLE"}
_FENCE = re.compile(r"^(`{3,}|~{3,})\{code-cell\}[^\n]*\n(.*?)^\1[ \t]*$", re.S | re.M)


def _code_cells(source: str) -> list[tuple[str, int, str]]:
    """(kind, number, code) of each code cell of an .ipynb (JSON), MyST .md or .py text.

    ``kind`` is ``"cell"`` (``number`` = the cell's index from 1, in an .ipynb) or ``"line"``
    (``number`` = the line of the source where the cell's code starts).
    """
    text = source.lstrip()
    if text.startswith("{"):
        try:
            nb = json.loads(text)
        except json.JSONDecodeError:
            nb = None
        if isinstance(nb, dict) and "cells" in nb:
            out = []
            for i, c in enumerate(nb["cells"]):
                if c.get("cell_type") == "code":
                    src = c.get("source", "")
                    out.append(("cell", i + 1, "".join(src) if isinstance(src, list) else src))
            return out
    cells = [("line", source[:m.start(2)].count("\n") + 1, m.group(2))
             for m in _FENCE.finditer(source)]
    return cells if cells or "```" in source else [("line", 1, source)]


def _strip_magics(code: str) -> str:
    """Blank out cell options, IPython magics and shell escapes so ``ast`` can parse the rest.

    Lines are blanked, not removed, so line numbers stay those of the cell.
    """
    lines = code.splitlines()
    if lines and lines[0].strip() == "---":  # MyST cell options as a YAML block
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), 0)
        lines[:end + 1] = [""] * (end + 1)
    out = []
    for line in lines:
        s = line.lstrip()
        opt = s.startswith(":") and re.match(r":[\w-]+:", s)
        out.append("" if s.startswith(("%", "!", "?")) or opt else line)
    return "\n".join(out)


def _is_status_word(s: str) -> bool:
    return s.strip().lower() in _STATUS_WORDS


def find_typed_statuses(notebook_source: str) -> list[str]:
    """Places where a notebook types a status instead of letting a rule give it.

    Flags, in every code cell: a string literal whose whole text is a status word
    (``"reproduced"``, ``"not testable"``, ... in any case); the status constants of this module
    used by name (``claims.REFUTED``); a :class:`Status` built directly; and any ``Verdict(...)``
    call (:class:`analysis.report.Verdict` takes a typed status and has no rule). Prose that
    merely contains a status word ("... = reproduced") is not flagged, nor is markdown.

    Args:
        notebook_source: the text of a MyST-markdown notebook, an ``.ipynb`` (JSON) or plain
            Python.

    Returns:
        One line per hit, in source order: ``"line L: what"`` (``L`` the line of the MyST or
        Python source) or, for an .ipynb, ``"cell N, line l: what"``; empty when the notebook
        is clean. A cell that does not parse is reported as a hit (it cannot be
        checked).
    """
    hits: list[str] = []
    for kind, start, code in _code_cells(notebook_source):
        def where(line: int | None, kind=kind, start=start) -> str:
            line = line or 1
            return f"cell {start}, line {line}" if kind == "cell" else f"line {start + line - 1}"

        try:
            tree = ast.parse(_strip_magics(code))
        except SyntaxError as err:
            hits.append(f"{where(err.lineno)}: does not parse, cannot be checked")
            continue
        found = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if _is_status_word(node.value):
                    found.append((node.lineno, f"status string literal {node.value!r}"))
            elif isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                if name == "Verdict":
                    found.append((node.lineno, "Verdict(...) built without a rule"))
                elif name == "Status":
                    found.append((node.lineno, "Status(...) built by hand, not by a rule"))
            elif isinstance(node, ast.Attribute) and node.attr in _STATUS_NAMES:
                found.append((node.lineno, f"status constant {node.attr} used by name"))
            elif isinstance(node, ast.Name) and node.id in _STATUS_NAMES:
                found.append((node.lineno, f"status constant {node.id} used by name"))
        hits += [f"{where(ln)}: {what}" for ln, what in sorted(found)]
    return hits
