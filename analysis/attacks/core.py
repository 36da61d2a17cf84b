"""Shared core of the attacks: results, checks, the pixel box, prediction, margins and the
driver that every attack runs through (see :mod:`analysis.attacks` for the conventions)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

Box = tuple[float | Tensor, float | Tensor] | None



# --------------------------------------------------------------------------- results


@dataclass
class AttackResult:
    """Output of one attack.

    Attributes:
        x_adv: adversarial (or unchanged) inputs, shaped like ``x``, inside the box.
        delta: ``x_adv - x``.
        success: bool ``(B,)``: ``argmax(model(x_adv)) != y``, re-evaluated.
        norms_l2: float64 ``(B,)`` L2 norms of ``delta``.
        norms_linf: float64 ``(B,)`` Linf norms of ``delta``.
        name: the attack and its main setting, e.g. ``"pgd_linf(eps=0.1)"``.
        info: per-sample extras (e.g. ``"target"`` of L-BFGS, ``"c"`` of C&W).
    """

    x_adv: Tensor
    delta: Tensor
    success: Tensor
    norms_l2: Tensor
    norms_linf: Tensor
    name: str
    info: dict[str, Any] = field(default_factory=dict)

    def distance(self, norm: str = "l2") -> Tensor:
        """Per-sample distance of a successful attack, ``inf`` where it failed (float64 ``(B,)``)."""
        n = self.norms_l2 if norm == "l2" else self.norms_linf
        return torch.where(self.success, n, torch.full_like(n, math.inf))

    def __len__(self) -> int:
        return int(self.success.shape[0])


def check_result(model: Any, x: Tensor, y: Tensor, result: AttackResult, eps: float,
                 norm: str = "linf", box: Box = (0.0, 1.0), tol: float = 1e-6) -> None:
    """Assert the invariants of an attack's actual output (raises ``AssertionError``).

    ``x_adv`` lies in the ``eps``-ball around ``x`` (``norm``) and in ``box``, ``delta`` is
    ``x_adv − x``, and ``success`` equals a fresh ``argmax(model(x_adv)) != y``.
    """
    norm = _check_norm(norm)
    d = result.x_adv - x.to(result.x_adv)
    size = _l2(d) if norm == "l2" else _flat(d).abs().amax(1)
    assert float(size.max()) <= eps + tol, f"perturbation {float(size.max())} > eps {eps}"
    assert torch.allclose(result.delta, d, atol=tol), "delta is not x_adv − x"
    if box is not None:
        assert float(result.x_adv.min()) >= box[0] - tol and float(result.x_adv.max()) <= box[1] + tol, \
            "x_adv leaves the box"
    with torch.no_grad(), _attack_mode(model):
        fresh = predict(model, result.x_adv) != y.to(result.success.device)
    assert torch.equal(fresh.cpu(), result.success.cpu()), "success flags do not match a re-check"


@dataclass
class MinNormResult:
    """Smallest L2 perturbation found per sample among several attacks.

    Attributes:
        distance: float64 ``(B,)`` L2 distance of the closest adversarial example found;
            ``0`` for samples misclassified already; ``inf`` where no attack succeeded.
        x_adv: the corresponding inputs (``x`` where no attack succeeded).
        by: per sample, the attack that found it (``"clean"`` = already misclassified,
            ``"none"`` = no success).
        per_attack: float64 ``(B,)`` distances of each attack (after refinement), ``inf`` = fail.
            ``"pgd_l2"`` searches only below the best radius of the attacks run before it, so
            its entry is ``inf`` where it did not improve on them; run it alone for its own
            distances.
    """

    distance: Tensor
    x_adv: Tensor
    by: list[str]
    per_attack: dict[str, Tensor] = field(default_factory=dict)

    @property
    def success(self) -> Tensor:
        """Bool ``(B,)``: some attack found an adversarial example (or x was misclassified)."""
        return torch.isfinite(self.distance)


# --------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _attack_mode(model: Any) -> Iterator[None]:
    """Eval mode and frozen parameters for the duration of an attack; restored afterwards."""
    if not isinstance(model, torch.nn.Module):
        yield
        return
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in flags:
            p.requires_grad_(f)
        model.train(was_training)


def _model_dtype_device(model: Any, x: Tensor) -> tuple[torch.dtype, torch.device]:
    if isinstance(model, torch.nn.Module):
        for p in model.parameters():
            if p.is_floating_point():
                return p.dtype, p.device
    return x.dtype, x.device


def _prep(model: Any, x: Tensor, y: Tensor, box: Box) -> tuple[Tensor, Tensor]:
    dtype, device = _model_dtype_device(model, x)
    x = torch.as_tensor(x).detach().to(device=device, dtype=dtype)
    y = torch.as_tensor(y).detach().to(device=device, dtype=torch.long).reshape(-1)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x has {x.shape[0]} samples, y has {y.shape[0]}")
    if box is not None and x.numel():
        lo, hi = _box_tensors(box, x)
        tol = 1e-6
        if bool((x < lo - tol).any()) or bool((x > hi + tol).any()):
            raise ValueError(f"x lies outside box={box!r} (range [{float(x.min()):.3g}, "
                             f"{float(x.max()):.3g}]); pass box=None for unbounded "
                             "(e.g. standardised tabular) data")
    return x, y


def _box_tensors(box: Box, x: Tensor) -> tuple[Tensor, Tensor]:
    lo, hi = box  # type: ignore[misc]
    lo = torch.as_tensor(lo, dtype=x.dtype, device=x.device)
    hi = torch.as_tensor(hi, dtype=x.dtype, device=x.device)
    return lo, hi


def _clip(x: Tensor, box: Box) -> Tensor:
    if box is None:
        return x
    lo, hi = _box_tensors(box, x)
    return torch.maximum(torch.minimum(x, hi), lo)


def _flat(t: Tensor) -> Tensor:
    return t.reshape(t.shape[0], -1)


def _bview(s: Tensor, like: Tensor) -> Tensor:
    return s.reshape(-1, *([1] * (like.dim() - 1)))


def _l2(t: Tensor) -> Tensor:
    return _flat(t).norm(dim=1)


def predict(model: Any, x: Tensor, batch_size: int | None = None) -> Tensor:
    """Predicted labels ``argmax model(x)`` without gradients, in chunks. Shape ``(B,)``."""
    bs = batch_size or 4096
    with torch.no_grad():
        if x.shape[0] == 0:
            return torch.zeros(0, dtype=torch.long, device=x.device)
        return torch.cat([model(x[i:i + bs]).argmax(dim=1) for i in range(0, x.shape[0], bs)])


def margin(logits: Tensor, y: Tensor) -> Tensor:
    """Untargeted margin ``max_{k≠y} z_k − z_y`` per sample (> 0 ⇔ misclassified). ``(B,)``."""
    zy = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), -math.inf).amax(dim=1)
    return other - zy


def _loss(logits: Tensor, y: Tensor, kind: str) -> Tensor:
    """Per-sample loss to *maximise*."""
    if kind == "ce":
        return F.cross_entropy(logits, y, reduction="none")
    if kind == "cw":
        return margin(logits, y)
    raise ValueError(f"loss must be 'ce' or 'cw', got {kind!r}")


def _per_sample(v: float | Tensor, n: int, like: Tensor) -> Tensor:
    """``v`` (scalar or ``(n,)``) as an ``(n,)`` tensor: floats in ``like``'s dtype (a Python
    float is built in that dtype directly, so a float64 model's ``eps`` is not first rounded
    to float32), integers as ``long``."""
    if isinstance(v, float):
        return torch.full((n,), v, dtype=like.dtype, device=like.device)
    t = torch.as_tensor(v, device=like.device)
    t = (t.long() if not t.is_floating_point() else t.to(like.dtype)).reshape(-1)
    if t.numel() == 1:
        return t.expand(n).clone()
    if t.numel() != n:
        raise ValueError(f"per-sample parameter has {t.numel()} values for {n} samples")
    return t.clone()


def _finish(model: Any, x: Tensor, y: Tensor, x_adv: Tensor, name: str, box: Box,
            correct: Tensor, batch_size: int | None, info: dict | None = None) -> AttackResult:
    x_adv = _clip(x_adv.detach(), box)
    x_adv = torch.where(_bview(correct, x), x_adv, x)
    success = predict(model, x_adv, batch_size) != y
    delta = x_adv - x
    d = _flat(delta).double()
    return AttackResult(x_adv=x_adv, delta=delta, success=success, norms_l2=d.norm(dim=1),
                        norms_linf=d.abs().amax(dim=1) if d.shape[1] else d.sum(dim=1),
                        name=name, info=info or {})


def _run(core: Callable[..., Any], model: Any, x: Tensor, y: Tensor, *, name: str, box: Box,
         batch_size: int | None, per_sample: dict[str, Any] | None = None,
         seed: int | None = None, attack_all: bool = False, **kw: Any) -> AttackResult:
    """Shared driver: prepare, freeze, attack the correctly classified samples in chunks,
    scatter back, clip, re-check."""
    x, y = _prep(model, x, y, box)
    n = x.shape[0]
    with _attack_mode(model):
        correct = predict(model, x, batch_size) == y
        if attack_all:
            correct = torch.ones_like(correct)
        idx = correct.nonzero().squeeze(1)
        ps = {k: _per_sample(v, n, x) for k, v in (per_sample or {}).items()}
        gen = torch.Generator().manual_seed(int(seed)) if seed is not None else None
        x_adv = x.clone()
        info: dict[str, Tensor] = {}
        bs = batch_size or max(1, len(idx))
        for s in range(0, len(idx), bs):
            ch = idx[s:s + bs]
            out = core(model, x[ch], y[ch], box=box, gen=gen,
                       **{k: v[ch] for k, v in ps.items()}, **kw)
            extra: dict[str, Tensor] = {}
            if isinstance(out, tuple):
                out, extra = out
            x_adv[ch] = out.detach().to(x.dtype)
            for k, v in extra.items():
                if k not in info:
                    fill = math.nan if v.is_floating_point() else -1
                    info[k] = torch.full((n,), fill, dtype=v.dtype, device=v.device)
                info[k][ch.to(v.device)] = v
        res = _finish(model, x, y, x_adv, name, box, correct, batch_size, info)
        if "target" in ps and "target" not in info:
            tgt = ps["target"]
            res.info["target"] = tgt
            res.info["target_hit"] = predict(model, res.x_adv, batch_size) == tgt
        return res


def _check_target(target: Any, y: Tensor) -> None:
    if target is None:
        return
    t = torch.as_tensor(target).reshape(-1).to(torch.as_tensor(y).device)
    yy = torch.as_tensor(y).reshape(-1)
    if t.numel() not in (1, yy.numel()):
        raise ValueError(f"target has {t.numel()} entries for {yy.numel()} samples")
    if bool((t == yy).any()):
        raise ValueError("a target equals the true label; targets must differ from y")



def _check_norm(norm: str) -> str:
    norm = norm.lower()
    if norm not in ("linf", "l2"):
        raise ValueError(f"norm must be 'linf' or 'l2', got {norm!r}")
    return norm


def _fmt(v: Any) -> str:
    if isinstance(v, Tensor):
        return "per-sample" if v.numel() > 1 else f"{float(v):.4g}"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _target_tag(target: Any) -> str:
    return "" if target is None else ",targeted"


def _check_keep(keep: str) -> None:
    if keep not in ("best", "last", "first"):
        raise ValueError(f"keep must be 'best', 'last' or 'first', got {keep!r}")


def _concat(parts: Sequence[AttackResult], name: str) -> AttackResult:
    info: dict[str, Any] = {}
    for k in parts[0].info if parts else []:
        info[k] = torch.cat([p.info[k] for p in parts])
    return AttackResult(
        x_adv=torch.cat([p.x_adv for p in parts]), delta=torch.cat([p.delta for p in parts]),
        success=torch.cat([p.success for p in parts]),
        norms_l2=torch.cat([p.norms_l2 for p in parts]),
        norms_linf=torch.cat([p.norms_linf for p in parts]), name=name, info=info)
