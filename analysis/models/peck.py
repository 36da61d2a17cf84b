"""Convolutional networks of chapter 03 (Peck 2017, §5.3), all plain ``nn.Sequential``.

* ``lenet5``: Caffe's ``lenet_train_test``: conv 20@5×5 (no padding, *no* activation) → max
  2×2 s2 → conv 50@5×5 → max 2×2 s2 → FC 800→500 → ReLU → FC 500→10. Input ``(1, 28, 28)`` in
  [0, 1] (Caffe scales 0-255 pixels by 1/256, the same up to 0.4%).
* ``lenet5_lrn``: the LeNet-LRN variants of Table 5.3: ``lrn="pool1"`` (LRN1, after pool1),
  ``"pool2"`` (LRN2), ``"both"`` (LRN3); across-channel LRN with the thesis's α (hand-coded,
  :class:`analysis.bounds.peck.LRN`), AlexNet constants k = 2, n = 5, α = 1e-4, β = 0.75 by default.
* ``nin_lite``: the stand-in for "CIFAR-NIN" (spec 002 §4): [conv5×5(c→w, pad 2), ReLU, 1×1,
  ReLU, max 3×3 s2] → [conv5×5(w→2w, pad 2), ReLU, 1×1, ReLU, avg 3×3 s2] → [conv3×3(2w→2w),
  ReLU, 1×1(2w→K)] → global average pool → flatten (logits; the final linear layer is the identity).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from analysis.bounds.peck import LRN


def lenet5(in_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10,
           lrn: str | None = None, lrn_size: int = 5, lrn_k: float = 2.0,
           lrn_alpha: float = 1e-4, lrn_beta: float = 0.75) -> nn.Sequential:
    """Caffe LeNet-5 (optionally with LRN after pool1 / pool2 / both).

    Args:
        in_shape: ``(C, H, W)``; H = W = 28 gives the 800-unit ip1 input.
        num_classes: outputs.
        lrn: None, ``"pool1"``, ``"pool2"`` or ``"both"``.
        lrn_size, lrn_k, lrn_alpha, lrn_beta: LRN constants (thesis α, not divided by n).

    Shape:
        ``(N, C, H, W) -> (N, num_classes)``.
    """
    if lrn not in (None, "pool1", "pool2", "both"):
        raise ValueError(f"lrn must be None, 'pool1', 'pool2' or 'both', got {lrn!r}")
    c, h, w = (int(v) for v in in_shape)
    side_h, side_w = ((h - 4) // 2 - 4) // 2, ((w - 4) // 2 - 4) // 2
    if side_h < 1 or side_w < 1:
        raise ValueError(f"input {tuple(in_shape)} too small for LeNet-5")

    def norm() -> LRN:
        return LRN(lrn_size, lrn_k, lrn_alpha, lrn_beta)

    layers: list[nn.Module] = [nn.Conv2d(c, 20, 5), nn.MaxPool2d(2, 2)]
    if lrn in ("pool1", "both"):
        layers.append(norm())
    layers += [nn.Conv2d(20, 50, 5), nn.MaxPool2d(2, 2)]
    if lrn in ("pool2", "both"):
        layers.append(norm())
    layers += [nn.Flatten(), nn.Linear(50 * side_h * side_w, 500), nn.ReLU(),
               nn.Linear(500, num_classes)]
    return nn.Sequential(*layers)


def lenet5_lrn(in_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10,
               lrn: str = "pool1", **kw) -> nn.Sequential:
    """:func:`lenet5` with LRN (``lrn`` required: ``"pool1"``, ``"pool2"`` or ``"both"``)."""
    if lrn is None:
        raise ValueError("lenet5_lrn needs lrn='pool1', 'pool2' or 'both'")
    return lenet5(in_shape, num_classes, lrn=lrn, **kw)


def nin_lite(in_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10,
             width: int = 8) -> nn.Sequential:
    """NIN-lite (stand-in for the thesis's "CIFAR-NIN", erratum E16).

    Args:
        in_shape: ``(C, H, W)``, H, W ≥ 20. num_classes: outputs. width: w (channels of block 1).

    Shape:
        ``(N, C, H, W) -> (N, num_classes)``.
    """
    c = int(in_shape[0])
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    w = int(width)
    return nn.Sequential(
        nn.Conv2d(c, w, 5, padding=2), nn.ReLU(), nn.Conv2d(w, w, 1), nn.ReLU(),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(w, 2 * w, 5, padding=2), nn.ReLU(), nn.Conv2d(2 * w, 2 * w, 1), nn.ReLU(),
        nn.AvgPool2d(3, 2),
        nn.Conv2d(2 * w, 2 * w, 3), nn.ReLU(), nn.Conv2d(2 * w, num_classes, 1),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    )


try:  # register with the shared model registry (analysis/models/__init__.py)
    from analysis.models import register as _register
except ImportError:  # registry not there yet
    _register = None

if _register is not None:
    _register("lenet5")(lenet5)
    _register("lenet5_lrn")(lenet5_lrn)
    _register("nin_lite")(nin_lite)
