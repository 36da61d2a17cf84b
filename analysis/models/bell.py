"""Networks of chapter 04 (Bell, *Neighborhoods of adversarial examples*, Part I, Tables 1-3).

Registered names (all ReLU, inputs ``(N, 1, 28, 28)`` in [0, 1], logits out):

* ``bell_fc``: fully connected ``784 → widths → 10``: ``widths=()`` is FC10-k (softmax
  regression; the thesis's "single layer ReLU" has no hidden layer), ``(100, 100)`` is
  FC100-100-10, ``(200, 200)`` FC200-200-10, ``(100, 20)`` the network of §5.1.1. The
  regularisation λ of the thesis is a training penalty, :class:`WeightPenalty`.
* ``bell_cch``: C-Ch of Table 3: four 5×5 convolutions, stride 1, no padding, ``Ch`` channels
  (28 → 24 → 20 → 16 → 12), ReLU after each, max-pool 2 (→ Ch×6×6), FC Ch·36 → 256, ReLU,
  FC 256 → 10.
* ``vgg_mini``, ``alexnet_mini``: two small CNNs standing in for VGG16 and AlexNet on
  Fashion-MNIST (spec §4): conv3-16 ×2, pool, conv3-32 ×2, pool, FC 128, FC 10; and conv5-32,
  pool, conv3-64, pool, FC 256, FC 10 (same padding).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from analysis.models import n_inputs, register


class _Flat(nn.Module):
    def __init__(self, in_shape: Sequence[int]):
        super().__init__()
        self.in_shape = tuple(int(s) for s in in_shape)

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], *self.in_shape)


@register("bell_fc")
def bell_fc(in_shape: Sequence[int] = (1, 28, 28), widths: Sequence[int] = (),
            num_classes: int = 10) -> nn.Sequential:
    """FC10-k (``widths=()``), FC100-100-10, FC200-200-10, 784-100-20-10 (ReLU).

    Shape:
        ``(N, *in_shape) -> (N, num_classes)``.
    """
    layers: list[nn.Module] = [nn.Flatten()]
    d = n_inputs(in_shape)
    for w in widths:
        layers += [nn.Linear(d, int(w)), nn.ReLU()]
        d = int(w)
    layers.append(nn.Linear(d, num_classes))
    return nn.Sequential(*layers)


@register("bell_cch")
def bell_cch(in_shape: Sequence[int] = (1, 28, 28), channels: int = 4,
             num_classes: int = 10) -> nn.Sequential:
    """C-Ch of Table 3 (``channels`` = Ch).

    Shape:
        ``(N, 1, 28, 28) -> (N, num_classes)``.
    """
    c, h, w = (int(v) for v in in_shape)
    ch = int(channels)
    if ch < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    side_h, side_w = (h - 16) // 2, (w - 16) // 2
    if side_h < 1 or side_w < 1:
        raise ValueError(f"input {tuple(in_shape)} too small for four 5x5 convolutions")
    layers: list[nn.Module] = [_Flat(in_shape)]
    cin = c
    for _ in range(4):
        layers += [nn.Conv2d(cin, ch, 5), nn.ReLU()]
        cin = ch
    layers += [nn.MaxPool2d(2), nn.Flatten(), nn.Linear(ch * side_h * side_w, 256), nn.ReLU(),
               nn.Linear(256, num_classes)]
    return nn.Sequential(*layers)


@register("vgg_mini")
def vgg_mini(in_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10,
             width: int = 16) -> nn.Sequential:
    """Stand-in for VGG16: conv3-w ×2, pool, conv3-2w ×2, pool, FC 128, FC K (ReLU)."""
    c, h, w = (int(v) for v in in_shape)
    a, b = int(width), 2 * int(width)
    return nn.Sequential(
        _Flat(in_shape),
        nn.Conv2d(c, a, 3, padding=1), nn.ReLU(), nn.Conv2d(a, a, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(a, b, 3, padding=1), nn.ReLU(), nn.Conv2d(b, b, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(b * (h // 4) * (w // 4), 128), nn.ReLU(),
        nn.Linear(128, num_classes))


@register("alexnet_mini")
def alexnet_mini(in_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10,
                 width: int = 32) -> nn.Sequential:
    """Stand-in for AlexNet: conv5-w, pool, conv3-2w, pool, FC 256, FC K (ReLU)."""
    c, h, w = (int(v) for v in in_shape)
    a, b = int(width), 2 * int(width)
    return nn.Sequential(
        _Flat(in_shape),
        nn.Conv2d(c, a, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(a, b, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(b * (h // 4) * (w // 4), 256), nn.ReLU(),
        nn.Linear(256, num_classes))


class WeightPenalty:
    """The thesis's per-layer regularisation ``Σ_l λ_l ‖W_l‖²`` (weights, not biases) added to
    the mean cross-entropy (a regulariser for :func:`analysis.train.fit`).

    The thesis writes ``λ‖w‖₂/N`` (N = number of weights) for FC10-k; with that reading
    λ = 1 cannot lower the accuracy to 87 % (spec §7.6), so the squared norm without 1/N is
    used and λ is the thesis's value.

    Args:
        lambdas: one λ per weight matrix (in ``model.parameters()`` order), or one number
            for all.
    """

    name = "weight_penalty"

    def __init__(self, lambdas: float | Sequence[float]):
        self.lambdas = [float(lambdas)] if isinstance(lambdas, (int, float)) else \
            [float(v) for v in lambdas]
        if any(v < 0 for v in self.lambdas):
            raise ValueError("penalties must be >= 0")
        self.params = {"lambdas": self.lambdas}

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor, logits: Tensor) -> Tensor:
        weights = [p for n, p in model.named_parameters() if p.dim() > 1]
        lam = self.lambdas if len(self.lambdas) > 1 else self.lambdas * len(weights)
        if len(lam) != len(weights):
            raise ValueError(f"{len(lam)} penalties for {len(weights)} weight matrices")
        return sum((l * (w ** 2).sum() for l, w in zip(lam, weights)),
                   torch.zeros((), dtype=logits.dtype, device=logits.device))


#: Table 1 of the thesis (accuracy %, average distortion, mean 0.7-persistence natural and
#: adversarial), for the paper-vs-ours tables.
TABLE1 = {
    "FC10-4": (92.09, 0.123, 0.93, 1.68), "FC10-2": (90.77, 0.178, 1.37, 4.25),
    "FC10-0": (86.89, 0.278, 1.92, 12.22), "FC100-100-10": (97.31, 0.086, 0.65, 0.56),
    "FC200-200-10": (97.61, 0.087, 0.73, 0.56), "C-2": (95.94, 0.09, 3.33, 0.027),
    "C-4": (97.36, 0.12, 0.35, 0.027), "C-8": (98.50, 0.11, 0.43, 0.0517),
    "C-16": (98.90, 0.11, 0.53, 0.0994), "C-32": (98.96, 0.11, 0.78, 0.0836),
    "C-64": (99.00, 0.10, 0.81, 0.0865), "C-128": (99.17, 0.11, 0.77, 0.0883),
    "C-256": (99.09, 0.11, 0.83, 0.0900), "C-512": (99.22, 0.10, 0.793, 0.0929),
}


def bell_net(name: str) -> tuple[str, dict, list[float] | None]:
    """``(model name, kwargs, per-layer λ or None)`` of a network of the thesis by its name:
    ``FC10-k`` (λ = 10^-k), ``FC100-100-10`` and ``FC200-200-10`` (λ = 1e-5, 1e-5, 1e-6),
    ``MLP-100-20`` (the 784-100-20-10 network of §5.1.1, λ = 1e-7), ``C-Ch`` (no penalty).
    """
    if name.startswith("FC10-"):
        k = int(name.split("-")[1])
        return "bell_fc", {"widths": []}, [10.0 ** (-k)]
    if name == "FC100-100-10":
        return "bell_fc", {"widths": [100, 100]}, [1e-5, 1e-5, 1e-6]
    if name == "FC200-200-10":
        return "bell_fc", {"widths": [200, 200]}, [1e-5, 1e-5, 1e-6]
    if name == "MLP-100-20":
        return "bell_fc", {"widths": [100, 20]}, [1e-7, 1e-7, 1e-7]
    if name.startswith("C-") and name[2:].isdigit():
        return "bell_cch", {"channels": int(name[2:])}, None
    raise ValueError(f"unknown network {name!r}: FC10-k, FC100-100-10, FC200-200-10, "
                     "MLP-100-20 or C-Ch")
