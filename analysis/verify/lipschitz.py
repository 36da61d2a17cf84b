"""The Lipschitz-margin certificate (Tsuzuku et al. 2018): operator norms of the affine maps."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from analysis.bounds.peck.rules import conv_operator_norm_certified, dense_operator_norm_certified
from analysis.verify.crown import Radius
from analysis.verify.network import DT, Affine, Network, network


def operator_norm(aff: Affine) -> float:
    """A certified upper bound on ‖A‖₂ of an affine map, equal to it up to rounding.

    A lone Conv2d uses :func:`analysis.bounds.peck.rules.conv_operator_norm_certified`; other
    maps :func:`analysis.bounds.peck.rules.dense_operator_norm_certified` of the dense ``A``.
    """
    mods = [m for m in aff.modules if not isinstance(m, (nn.Identity, nn.Flatten, nn.Dropout))]
    if len(mods) == 1 and isinstance(mods[0], nn.Conv2d) and mods[0].groups == 1:
        c = mods[0]
        return conv_operator_norm_certified(c.weight, aff.in_shape, c.stride, c.padding)
    return dense_operator_norm_certified(aff.dense())


def lipschitz_constant(net: Network) -> float:
    """Product of the layers' L2 Lipschitz constants (an upper bound of the network's)."""
    L = 1.0
    for m in net.layers:
        if isinstance(m, Affine):
            L *= operator_norm(m)
        elif m.kind == "maxpool":
            cover = torch.bincount(m.windows.flatten()).max()
            L *= math.sqrt(float(cover))
    return L


@torch.no_grad()
def lipschitz_radius(model: nn.Module | Network, x: Tensor, *,
                     in_shape: Sequence[int] | None = None) -> Radius:
    """Tsuzuku et al. 2018: ``(f_y − max_{j≠y} f_j) / (√2 L)`` (L2), ``y`` the predicted class."""
    t0 = time.perf_counter()
    net = model if isinstance(model, Network) else network(model, in_shape or x.shape[1:])
    L = lipschitz_constant(net)
    logits = net.forward(x.flatten(1).to(DT).cpu())
    top2 = logits.topk(2, dim=1).values
    margin = (top2[:, 0] - top2[:, 1]).numpy()
    dt = (time.perf_counter() - t0) / max(len(x), 1)
    return Radius(margin / (math.sqrt(2) * L), np.full(len(x), dt), "lipschitz", "l2")
