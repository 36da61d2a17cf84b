"""Every architecture of the report, built by name.

``build(name, **kw)`` calls the builder registered under ``name``; ``available()`` lists the
names. Core models live here; chapter-specific ones in ``analysis/models/<topic>.py`` modules
that call :func:`register` and are imported at the bottom of this file.

Every model maps a batch shaped like the data, ``(N, C, H, W)`` or ``(N, d)``, to logits
``(N, K)`` and flattens/reshapes the input itself. Initialisation uses torch's global generator,
so ``torch.manual_seed(s)`` before :func:`build` (or ``build(..., seed=s)``) fixes the weights.
All core models are twice differentiable in the input where their activation is (the recurrence
of ``rnn_rows`` is written with :class:`torch.nn.Linear`, so ``torch.func`` double backward and
Hessian-vector products work).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def _ident(obj: Any) -> tuple[str | None, str | None]:
    return getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)


def register(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register a model class or builder function under ``name``.

    Raises:
        ValueError: when ``name`` is already taken by a different builder.
    """

    def deco(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        old = _REGISTRY.get(name)
        if old is not None and _ident(old) != _ident(builder):  # re-import/reload is fine
            raise ValueError(f"model name {name!r} is already registered to {old!r}")
        _REGISTRY[name] = builder
        return builder

    return deco


def available() -> list[str]:
    """Sorted names of all registered models."""
    return sorted(_REGISTRY)


def builder(name: str) -> Callable[..., nn.Module]:
    """The class or function registered under ``name``."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available())}")
    return _REGISTRY[name]


def build(name: str, *, seed: int | None = None, **kw: Any) -> nn.Module:
    """Build the model registered under ``name`` with keyword arguments ``kw``.

    Args:
        name: a registered name (see :func:`available`).
        seed: if given, the weights are drawn under ``torch.manual_seed(seed)`` without
            disturbing the caller's global generator.
        **kw: the builder's arguments.

    Returns:
        The module (train mode, CPU, float32); ``model.spec == (name, kw)``.
    """
    make = builder(name)
    if seed is None:
        model = make(**kw)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = make(**kw)
    model.spec = (name, dict(kw))
    return model


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU, "tanh": nn.Tanh, "softplus": nn.Softplus, "swish": nn.SiLU,
    "sigmoid": nn.Sigmoid, "identity": nn.Identity,
}


def get_activation(name: str) -> nn.Module:
    """A fresh activation module by name (relu, tanh, softplus, swish = x·σ(x), sigmoid,
    identity)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; available: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def _shape(in_shape: int | Sequence[int]) -> tuple[int, ...]:
    return (int(in_shape),) if isinstance(in_shape, int) else tuple(int(s) for s in in_shape)


def n_inputs(in_shape: int | Sequence[int]) -> int:
    """Number of input features of ``in_shape``."""
    return math.prod(_shape(in_shape))


def n_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ----------------------------------------------------------------------------------------------
# Core models
# ----------------------------------------------------------------------------------------------
@register("linear")
class Linear(nn.Module):
    """Multinomial logistic regression ``f(x) = W x + b``.

    Args:
        in_shape: input shape (flattened inside), e.g. ``(1, 28, 28)`` or ``4``.
        num_classes: logits ``K``.

    Shape:
        input ``(N, *in_shape)``, output ``(N, K)``.
    """

    def __init__(self, in_shape: int | Sequence[int] = (1, 28, 28), num_classes: int = 10):
        super().__init__()
        self.in_shape = _shape(in_shape)
        self.fc = nn.Linear(n_inputs(in_shape), num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(x.reshape(x.shape[0], -1))


@register("mlp")
class MLP(nn.Module):
    """Fully connected network ``d -> widths[0] -> ... -> widths[-1] -> K``.

    Args:
        in_shape: input shape (flattened inside).
        widths: hidden layer widths (empty = linear model).
        num_classes: logits ``K``.
        activation: relu, tanh, softplus, swish, sigmoid or identity.
        bias: biases in every layer.

    Shape:
        input ``(N, *in_shape)``, output ``(N, K)``.
    """

    def __init__(self, in_shape: int | Sequence[int] = (1, 28, 28),
                 widths: Sequence[int] = (100,), num_classes: int = 10,
                 activation: str = "relu", bias: bool = True):
        super().__init__()
        self.in_shape = _shape(in_shape)
        layers: list[nn.Module] = []
        d = n_inputs(in_shape)
        for w in widths:
            layers += [nn.Linear(d, int(w), bias=bias), get_activation(activation)]
            d = int(w)
        layers.append(nn.Linear(d, num_classes, bias=bias))
        self.net = nn.Sequential(*layers)
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.reshape(x.shape[0], -1))


@register("cnn_small")
class CNNSmall(nn.Module):
    """A small CNN: two blocks ``conv 3x3 (same padding) -> activation -> 2x2 pooling``, then
    ``FC hidden -> activation -> FC K``.

    Args:
        in_shape: ``(C, H, W)`` (default MNIST ``(1, 28, 28)``).
        num_classes: logits ``K``.
        channels: channels of the two convolutions.
        hidden: width of the hidden FC layer.
        activation: see :data:`ACTIVATIONS`.
        pool: ``"max"`` or ``"avg"`` (average pooling keeps the network smooth).

    Shape:
        input ``(N, C, H, W)`` or ``(N, C*H*W)``, output ``(N, K)``.
    """

    def __init__(self, in_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10,
                 channels: Sequence[int] = (16, 32), hidden: int = 100,
                 activation: str = "relu", pool: str = "max"):
        super().__init__()
        if len(in_shape) != 3:
            raise ValueError(f"cnn_small needs in_shape (C, H, W), got {in_shape}")
        if pool not in ("max", "avg"):
            raise ValueError(f"pool must be 'max' or 'avg', got {pool!r}")
        c, h, w = _shape(in_shape)
        self.in_shape = (c, h, w)
        act = get_activation
        pooling = nn.MaxPool2d if pool == "max" else nn.AvgPool2d
        c1, c2 = (int(v) for v in channels)
        self.features = nn.Sequential(
            nn.Conv2d(c, c1, 3, padding=1), act(activation), pooling(2),
            nn.Conv2d(c1, c2, 3, padding=1), act(activation), pooling(2))
        h, w = h // 4, w // 4
        if h < 1 or w < 1:
            raise ValueError(f"input {in_shape} is too small for two 2x2 poolings")
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c2 * h * w, hidden), act(activation),
                                  nn.Linear(hidden, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x.reshape(x.shape[0], *self.in_shape)))


@register("rnn_rows")
class RNNRows(nn.Module):
    """Elman RNN that reads an image row by row.

    With ``x_t`` the ``t``-th row (``C*W`` pixels; ``t = 1..H``, 28 steps of 28 pixels on
    MNIST)::

        h_0 = 0,   h_t = σ(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh),   logits = W_o h_H + b_o

    with ``σ`` = tanh by default. Initialisation as :class:`torch.nn.RNN` (uniform in
    ``±1/sqrt(hidden)``) and :class:`torch.nn.Linear` for the output layer.

    Args:
        in_shape: ``(C, H, W)`` image shape, or ``(H, W)``; for tabular input ``d`` give
            ``rows`` (``d`` must be divisible by it).
        hidden: hidden units ``h``.
        num_classes: logits ``K``.
        nonlinearity: ``"tanh"`` (default), ``"relu"`` or any name of :data:`ACTIVATIONS`.
        rows: number of time steps for tabular input.

    Shape:
        input ``(N, *in_shape)``, output ``(N, K)``.
    """

    def __init__(self, in_shape: int | Sequence[int] = (1, 28, 28), hidden: int = 128,
                 num_classes: int = 10, nonlinearity: str = "tanh", rows: int | None = None):
        super().__init__()
        shape = _shape(in_shape)
        if len(shape) == 3:
            c, h, w = shape
            self.steps, self.step_dim = h, c * w
        elif len(shape) == 2:
            self.steps, self.step_dim = shape
        else:
            d = shape[0]
            if rows is None or d % rows:
                raise ValueError(f"tabular input of size {d} needs rows dividing it, got {rows}")
            self.steps, self.step_dim = rows, d // rows
        self.in_shape = shape
        self.hidden = hidden
        self.nonlinearity = nonlinearity
        self.ih = nn.Linear(self.step_dim, hidden)
        self.hh = nn.Linear(hidden, hidden)
        self.act = get_activation(nonlinearity)
        self.out = nn.Linear(hidden, num_classes)
        bound = 1.0 / math.sqrt(hidden)
        for p in (*self.ih.parameters(), *self.hh.parameters()):
            nn.init.uniform_(p, -bound, bound)

    def sequence(self, x: Tensor) -> Tensor:
        """The input as a sequence ``(N, steps, step_dim)``: image rows (channels side by
        side) or consecutive chunks of a flat vector."""
        n = x.shape[0]
        if len(self.in_shape) == 3:
            x = x.reshape(n, *self.in_shape).permute(0, 2, 1, 3)  # (N, H, C, W)
        return x.reshape(n, self.steps, self.step_dim)

    def hidden_states(self, x: Tensor) -> Tensor:
        """All hidden states ``(N, steps, hidden)``."""
        seq = self.sequence(x)
        pre = self.ih(seq)  # (N, T, h): the input part of every step at once
        h = torch.zeros(x.shape[0], self.hidden, dtype=pre.dtype, device=pre.device)
        states = []
        for t in range(self.steps):
            h = self.act(pre[:, t] + self.hh(h))
            states.append(h)
        return torch.stack(states, dim=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.hidden_states(x)[:, -1])


# Chapter-specific models register themselves on import (keep these lines at the bottom).
from analysis.models import bell, peck, swish, synthesis  # noqa: E402, F401
