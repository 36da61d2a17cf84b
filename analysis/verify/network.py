"""A network as a chain of affine maps and nonlinear layers (see :mod:`analysis.verify`)."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from analysis.bounds.peck.rules import leaves

DT = torch.float64
_AFFINE = (nn.Linear, nn.Conv2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.BatchNorm1d,
           nn.BatchNorm2d, nn.Flatten, nn.Identity, nn.Dropout, nn.Unflatten)
_SHAPE_ONLY = (nn.Flatten, nn.Identity, nn.Dropout, nn.Unflatten)



def _abs_copy(m: nn.Module) -> nn.Module:
    """``m`` with |weights|, zero biases and zero running means: an entrywise upper bound of
    the absolute value of the linear part of ``m`` (for interval radii)."""
    a = copy.deepcopy(m)
    with torch.no_grad():
        for name, p in a.named_parameters():
            p.copy_(p.abs() if name == "weight" else torch.zeros_like(p))
        if isinstance(a, (nn.BatchNorm1d, nn.BatchNorm2d)):
            a.running_mean.zero_()
    return a


@dataclass
class Affine:
    """``z = A h + b`` for a run of affine layers, on flattened vectors.

    Attributes:
        modules: the layers, applied to ``h.reshape(-1, *in_shape)``.
        in_shape, out_shape: per-sample shapes of input and output.
        bias: ``b = f(0)`` flattened, ``(n_out,)``.
    """

    modules: list[nn.Module]
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    bias: Tensor
    _abs: list[nn.Module] = field(default_factory=list, repr=False)
    _dense: Tensor | None = field(default=None, repr=False)

    @property
    def n_in(self) -> int:
        return math.prod(self.in_shape)

    @property
    def n_out(self) -> int:
        return math.prod(self.out_shape)

    def _seq(self, h: Tensor, mods: Sequence[nn.Module]) -> Tensor:
        h = h.reshape(-1, *self.in_shape)
        for m in mods:
            if isinstance(m, nn.Linear) and h.ndim > 2:
                h = h.flatten(1)
            h = m(h)
        return h.reshape(h.shape[0], -1)

    def forward(self, h: Tensor) -> Tensor:
        """``A h + b`` for ``h`` ``(B, n_in)``."""
        return self._seq(h, self.modules)

    def linear(self, h: Tensor) -> Tensor:
        """``A h`` for ``h`` ``(B, n_in)``."""
        return self.forward(h) - self.bias

    def abs_linear(self, r: Tensor) -> Tensor:
        """An entrywise upper bound of ``|A| r`` for ``r ≥ 0`` ``(B, n_in)``."""
        if not self._abs:
            self._abs = [_abs_copy(m) for m in self.modules]
        return self._seq(r, self._abs)

    def back(self, lam: Tensor) -> Tensor:
        """``Λ A`` for ``Λ`` ``(R, n_out)`` (a vector-Jacobian product), ``(R, n_in)``."""
        if all(isinstance(m, _SHAPE_ONLY) for m in self.modules) and self.n_in == self.n_out:
            return lam  # a map that only reshapes (flattened, it is the identity)
        conv = self.lone_conv()
        if conv is not None:
            c, h, w = self.in_shape
            out = lam.reshape(lam.shape[0], *self.out_shape)
            k = conv.weight.shape[2:]
            s, p = conv.stride, conv.padding
            op = tuple(n - ((o - 1) * st - 2 * pd + q) for n, o, st, pd, q in
                       zip((h, w), self.out_shape[1:], s, p, k))
            g = nn.functional.conv_transpose2d(out, conv.weight, stride=s, padding=p,
                                               output_padding=op)
            return g.reshape(lam.shape[0], -1)
        if self._dense is not None:
            return lam @ self._dense
        if len(self.modules) == 1 and isinstance(self.modules[0], nn.Linear):
            return lam @ self.modules[0].weight
        with torch.enable_grad():
            h = torch.zeros(lam.shape[0], self.n_in, dtype=lam.dtype, requires_grad=True)
            (g,) = torch.autograd.grad(self.linear(h), h, lam)
        return g

    def lone_conv(self) -> nn.Conv2d | None:
        """The map's one Conv2d (groups 1, undilated, numeric padding) when the others only
        reshape, else ``None``."""
        core = [m for m in self.modules if not isinstance(m, _SHAPE_ONLY)]
        if len(core) == 1 and isinstance(core[0], nn.Conv2d) and core[0].groups == 1 \
                and core[0].dilation in (1, (1, 1)) and not isinstance(core[0].padding, str) \
                and isinstance(core[0].padding, tuple):
            return core[0]
        return None

    def dense(self) -> Tensor:
        """The matrix ``A`` ``(n_out, n_in)`` (computed once; a lone Conv2d by
        :func:`analysis.bounds.peck.rules.conv_dense_matrix`, which copies the weights)."""
        if self._dense is None:
            core = [m for m in self.modules if not isinstance(m, _SHAPE_ONLY)]
            if len(core) == 1 and isinstance(core[0], nn.Conv2d) and core[0].groups == 1 \
                    and core[0].dilation in (1, (1, 1)) and not isinstance(core[0].padding, str):
                from analysis.bounds.peck.rules import conv_dense_matrix
                c = core[0]
                self._dense = conv_dense_matrix(c.weight, self.in_shape, c.stride,
                                                c.padding).to(self.bias.dtype)
            else:
                eye = torch.eye(self.n_out, dtype=self.bias.dtype)
                self._dense = torch.cat([self.back(c) for c in eye.split(2048)])
        return self._dense


@dataclass
class Nonlinear:
    """A ReLU, Tanh or max-pooling layer on flattened vectors.

    Attributes:
        kind: ``"relu"``, ``"tanh"`` or ``"maxpool"``.
        module: the layer.
        windows: for max pooling, ``(n_out, q)`` indices of each window's inputs.
    """

    kind: str
    module: nn.Module
    windows: Tensor | None = None

    def forward(self, z: Tensor) -> Tensor:
        if self.kind == "relu":
            return z.clamp_min(0)
        if self.kind == "tanh":
            return torch.tanh(z)
        return z[:, self.windows].amax(-1)


def _pool_windows(m: nn.MaxPool2d, shape: tuple[int, ...]) -> Tensor:
    c, h, w = shape
    k = m.kernel_size if isinstance(m.kernel_size, tuple) else (m.kernel_size, m.kernel_size)
    s = m.stride if isinstance(m.stride, tuple) else (m.stride or k[0],) * 2
    pad = m.padding if isinstance(m.padding, tuple) else (m.padding, m.padding)
    if pad != (0, 0) or m.dilation not in (1, (1, 1)) or m.ceil_mode:
        raise ValueError("max pooling: only unpadded, undilated, floor mode supported")
    idx = torch.arange(c * h * w).reshape(1, c, h, w).double()
    win = nn.functional.unfold(idx, k, stride=s)  # (1, c*kh*kw, L)
    L = win.shape[-1]
    win = win.reshape(c, k[0] * k[1], L).permute(0, 2, 1).reshape(c * L, -1)
    return win.round().long()


@dataclass
class Network:
    """A network as ``[Affine, Nonlinear, Affine, ..., Affine]`` (alternating).

    Attributes:
        layers: the chain. in_shape: per-sample input shape.
    """

    layers: list[Affine | Nonlinear]
    in_shape: tuple[int, ...]

    @property
    def affines(self) -> list[Affine]:
        return [m for m in self.layers if isinstance(m, Affine)]

    def forward(self, x: Tensor) -> Tensor:
        """Logits for ``x`` ``(B, ...)`` (flattened inside)."""
        h = x.reshape(x.shape[0], -1).to(DT)
        for m in self.layers:
            h = m.forward(h)
        return h

    @property
    def piecewise_linear(self) -> bool:
        return all(m.kind != "tanh" for m in self.layers if isinstance(m, Nonlinear))


@torch.no_grad()
def network(model: nn.Module, in_shape: Sequence[int] | None = None,
            dtype: torch.dtype = DT) -> Network:
    """Read ``model`` into a :class:`Network` (a float64 copy, eval mode).

    Args:
        model: Sequential of the supported layers (see module docstring).
        in_shape: per-sample input shape; default ``model.in_shape``.
        dtype: the dtype of the copy.

    Raises:
        ValueError: an unsupported layer.
    """
    if in_shape is None:
        in_shape = getattr(model, "in_shape", None)
        if in_shape is None:
            raise ValueError("give in_shape (the model has no .in_shape)")
    shape = tuple(int(v) for v in in_shape)
    net = copy.deepcopy(model).cpu().to(dtype).eval().requires_grad_(False)
    chain: list[Affine | Nonlinear] = []
    run: list[nn.Module] = []
    run_in = shape
    h = torch.zeros(1, *shape, dtype=dtype)

    def close() -> None:
        nonlocal run, run_in
        out_shape = tuple(h.shape[1:])
        mods = run or [nn.Identity()]
        aff = Affine(mods, run_in, out_shape, torch.zeros(0, dtype=dtype))
        aff.bias = aff.forward(torch.zeros(1, math.prod(run_in), dtype=dtype))[0]
        chain.append(aff)
        run = []

    for m in leaves(net):
        if isinstance(m, _AFFINE):
            if isinstance(m, nn.Linear) and h.ndim > 2:
                h = h.flatten(1)
            run.append(m)
            h = m(h)
        elif isinstance(m, (nn.ReLU, nn.Tanh, nn.MaxPool2d)):
            close()
            kind = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.MaxPool2d: "maxpool"}[type(m)]
            win = _pool_windows(m, tuple(h.shape[1:])) if kind == "maxpool" else None
            chain.append(Nonlinear(kind, m, win))
            h = m(h)
            run_in = tuple(h.shape[1:])
        else:
            raise ValueError(f"no verification rule for layer {type(m).__name__}")
    close()
    return Network(chain, shape)
