"""Adversarial attacks: FGSM, BIM, PGD, MI-FGSM, R+FGSM, DeepFool, C&W-L2, Szegedy's L-BFGS,
fast-gradient line searches and a minimal-norm search over several of them.

A package by family: :mod:`~analysis.attacks.core` (results, checks, box, prediction, margin,
the shared driver), :mod:`~analysis.attacks.gradient` (FGSM, BIM, PGD, MI-FGSM, R+FGSM,
robust accuracy), :mod:`~analysis.attacks.minimal` (fast-gradient line searches, DeepFool,
C&W-L2, refinement, minimal-norm search), :mod:`~analysis.attacks.lbfgs` (Szegedy's L-BFGS)
and :mod:`~analysis.attacks.unit_tests` (attack unit tests with a guaranteed adversarial).
Every public name is importable from here (``attacks.pgd``, ``attacks.min_norm``, ...); the
private helpers (``_run``, ``_pgd_core``, ...) are imported from the module that defines them.

Conventions shared by every attack:

* ``attack(model, x, y, ...) -> AttackResult``. ``model`` maps a batch shaped like the data to
  logits ``(B, K)``. During the attack it is put in eval mode and its parameters are frozen
  (``requires_grad=False``); both are restored afterwards, and no parameter ``.grad`` is
  touched: only the input is differentiated.
* ``box=(0.0, 1.0)`` (default, pixels) clips every iterate and the output to the box;
  ``box=None`` means unbounded inputs (standardised tabular data). The bounds may also be
  tensors broadcastable to one sample (per-feature bounds).
* The output is **re-checked**: ``success = argmax(model(x_adv)) != y``, evaluated on the
  returned (clipped) ``x_adv``. Samples that are already misclassified are returned unchanged
  with ``success=True`` and a zero perturbation (distance 0); they are not attacked.
* ``x`` is cast to the dtype and device of the model's parameters (so a float64 model gets
  float64 inputs); ``y`` holds integer labels ``(B,)``.
* Norms are L2 unless named; ``norms_l2`` and ``norms_linf`` are float64 per sample.
* Random starts draw from a ``torch.Generator`` seeded with ``seed``: results are deterministic
  for a given seed, batch size and thread count.
* ``batch_size`` splits the (correctly classified) samples into chunks; ``None`` = one chunk.
"""

from __future__ import annotations

from analysis.attacks.core import AttackResult, Box, MinNormResult, check_result, margin, predict
from analysis.attacks.gradient import (
    bim,
    fgsm,
    mifgsm,
    pgd,
    rfgsm,
    robust_accuracy,
    robust_outcomes,
)
from analysis.attacks.lbfgs import lbfgs
from analysis.attacks.minimal import cw_l2, deepfool, fgm_bisection, min_norm, refine

__all__ = [
    "AttackResult",
    "Box",
    "check_result",
    "MinNormResult",
    "fgsm",
    "bim",
    "pgd",
    "mifgsm",
    "rfgsm",
    "fgm_bisection",
    "deepfool",
    "cw_l2",
    "lbfgs",
    "refine",
    "min_norm",
    "robust_accuracy",
    "robust_outcomes",
    "predict",
    "margin",
]
