"""The one-hidden-layer MLP of chapter 06 (synthesis), built as a chain every tool can read.

``chain_mlp``: ``Flatten → Linear(d, hidden) → activation → Linear(hidden, K)`` held in a
``.net`` Sequential, so Peck's margin regulariser and sound chain
(:mod:`analysis.bounds.peck`), the verifiers (:mod:`analysis.verify`, ReLU twin) and the
Cross-Hölder certificate (:mod:`analysis.bounds.hessian`, via ``fc1``/``fc2``/``activation``)
all read the same network. With ``activation="swish"`` it computes exactly what
:class:`analysis.models.swish.SwishMLP` computes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from analysis.models.swish import ACTIVATIONS


class ChainMLP(nn.Module):
    """``f(x) = W2 act(W1 x + b1) + b2`` as ``self.net`` (a Sequential).

    Args:
        in_shape: per-sample input shape (flattened inside).
        hidden: hidden units. num_classes: logits ``K``.
        activation: ``"swish"`` (twice differentiable) or ``"relu"`` (the piecewise-linear twin).

    Shape:
        input ``(N, *in_shape)``, output ``(N, K)``.
    """

    def __init__(self, in_shape: Sequence[int] = (1, 28, 28), hidden: int = 64,
                 num_classes: int = 10, activation: str = "swish"):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if hidden < 1 or num_classes < 2:
            raise ValueError(f"need hidden >= 1 and num_classes >= 2, got {hidden}, {num_classes}")
        self.in_shape = tuple(int(s) for s in in_shape)
        d = int(torch.tensor(self.in_shape).prod())
        self.activation = activation
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(d, hidden), ACTIVATIONS[activation](),
                                 nn.Linear(hidden, num_classes))

    @property
    def fc1(self) -> nn.Linear:
        return self.net[1]

    @property
    def fc2(self) -> nn.Linear:
        return self.net[3]

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.reshape(x.shape[0], *self.in_shape))


from analysis.models import register  # noqa: E402

register("chain_mlp")(ChainMLP)
