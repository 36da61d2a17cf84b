"""Twice-differentiable networks of chapter 05 (Mustafa, Vandermeulen & Kloft 2020).

* ``swish_cnn``: Carlini & Wagner's MNIST network with ReLU replaced by SWISH ``x·σ(x)`` and
  max-pooling replaced by stride-2 convolutions (App. C.2.1): conv 3×3 (32) → conv 3×3 (32,
  stride 2) → conv 3×3 (64) → conv 3×3 (64, stride 2) → FC 200 → FC 200 → FC 10, valid padding,
  SWISH after every layer but the logits, no dropout, no batch-norm (312 202 parameters at
  ``width=1``). ``width`` scales the channels and ``fc`` sets the hidden FC width
  (``width=0.25, fc=64`` is the scaled-down network of the chapter, 25 410 parameters).
* ``swish_mlp``: one hidden layer ``d → hidden → K`` with SWISH, whose margin Hessians have a
  closed form (used for certified radii in :mod:`analysis.bounds.hessian`).

A ReLU network has a zero input Hessian almost everywhere, so ``activation="relu"`` exists only
to show that (spec test 6).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

ACTIVATIONS = {"swish": nn.SiLU, "relu": nn.ReLU, "softplus": nn.Softplus, "tanh": nn.Tanh}


def _act(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]()


def _conv_out(n: int, stride: int) -> int:
    """Spatial size after a valid 3×3 convolution."""
    return (n - 3) // stride + 1


class SwishCNN(nn.Module):
    """Carlini & Wagner's MNIST CNN with SWISH and strided convolutions (App. C.2.1).

    Args:
        in_shape: ``(C, H, W)`` of the input (default MNIST ``(1, 28, 28)``).
        num_classes: number of logits ``K``.
        width: channel multiplier (``1.0`` = 32-32-64-64 channels).
        fc: width of the two hidden fully connected layers (200 in the document).
        activation: ``"swish"`` (document) or ``"relu"``/``"softplus"``/``"tanh"``.

    Shape:
        input ``(N, C, H, W)`` (or ``(N, C·H·W)``, reshaped), output ``(N, K)``.
    """

    def __init__(self, in_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10,
                 width: float = 1.0, fc: int = 200, activation: str = "swish"):
        super().__init__()
        if width <= 0 or fc < 1 or num_classes < 2:
            raise ValueError(f"need width > 0, fc >= 1, num_classes >= 2; got {width}, {fc}, "
                             f"{num_classes}")
        c, h, w = (int(s) for s in in_shape)
        c1, c2 = max(1, round(32 * width)), max(1, round(64 * width))
        self.in_shape = (c, h, w)
        layers: list[nn.Module] = []
        chans = [c, c1, c1, c2, c2]
        for i, stride in enumerate((1, 2, 1, 2)):
            layers += [nn.Conv2d(chans[i], chans[i + 1], 3, stride=stride), _act(activation)]
            h, w = _conv_out(h, stride), _conv_out(w, stride)
        if h < 1 or w < 1:
            raise ValueError(f"input {in_shape} is too small for four 3×3 convolutions")
        layers += [nn.Flatten(), nn.Linear(c2 * h * w, fc), _act(activation),
                   nn.Linear(fc, fc), _act(activation), nn.Linear(fc, num_classes)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.reshape(x.shape[0], *self.in_shape))


class SwishMLP(nn.Module):
    """One-hidden-layer network ``f(x) = W2 swish(W1 x + b1) + b2``.

    Args:
        in_shape: input shape (flattened inside).
        hidden: hidden units.
        num_classes: logits ``K``.
        activation: ``"swish"`` (default) or another name of :data:`ACTIVATIONS`.

    Shape:
        input ``(N, *in_shape)``, output ``(N, K)``.
    """

    def __init__(self, in_shape: Sequence[int] | int = (1, 28, 28), hidden: int = 64,
                 num_classes: int = 10, activation: str = "swish"):
        super().__init__()
        d = in_shape if isinstance(in_shape, int) else int(torch.tensor(in_shape).prod())
        if hidden < 1 or num_classes < 2:
            raise ValueError(f"need hidden >= 1 and num_classes >= 2, got {hidden}, {num_classes}")
        self.fc1 = nn.Linear(d, hidden)
        self.act = _act(activation)
        self.fc2 = nn.Linear(hidden, num_classes)
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x.reshape(x.shape[0], -1))))


def n_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


try:  # register with the shared model registry (analysis/models/__init__.py)
    from analysis.models import register as _register
except ImportError:  # pragma: no cover - registry not importable (standalone use)
    _register = None

if _register is not None:
    _register("swish_cnn")(SwishCNN)
    _register("swish_mlp")(SwishMLP)
