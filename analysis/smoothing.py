"""Randomized smoothing (Cohen, Rosenfeld & Kolter 2019): a certified L2 radius for the smoothed
classifier ``g(x) = argmax_c P(f(x + σε) = c)``, ``ε ~ N(0, I)``, and the Gaussian noise
augmentation it is trained with.

:func:`certify` is the paper's CERTIFY: ``n0`` noisy copies pick the candidate class ``c_A``;
``n`` fresh copies count its votes ``n_A``; the one-sided Clopper-Pearson lower confidence bound
``p_A`` (level ``1 − α``, :func:`lower_confidence_bound`, from ``scipy.stats``) gives the radius
``σ Φ⁻¹(p_A)``, and the point is abstained on when ``p_A ≤ 1/2``. With probability at least
``1 − α`` over the noise, ``g`` is constant on the L2 ball of that radius (Theorem 1 with
``p_B = 1 − p_A``). The certificate is about ``g``, not about the base network ``f``: it cannot
be compared with an attack on ``f``.

Units: inputs as given (pixels in [0, 1] for images; the noise is not clipped to the box, as in
the paper); σ and radii in the same units, L2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats as sps
from torch import Tensor

ABSTAIN = -1


def lower_confidence_bound(k: int | np.ndarray, n: int, alpha: float) -> np.ndarray:
    """One-sided Clopper-Pearson lower bound of a binomial rate: ``P(p < bound) ≤ α``.

    ``Beta(α; k, n − k + 1)`` quantile; 0 where ``k = 0``.
    """
    k = np.asarray(k, dtype=float)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    safe = np.maximum(k, 1.0)
    out = sps.beta.ppf(alpha, safe, n - safe + 1)
    return np.where(k > 0, out, 0.0)


@torch.no_grad()
def _counts(model: torch.nn.Module, x: Tensor, sigma: float, n: int, batch: int,
            gen: torch.Generator, num_classes: int) -> Tensor:
    """Class votes ``(B, K)`` of ``model`` on ``n`` Gaussian copies of each point."""
    out = torch.zeros(x.shape[0], num_classes, dtype=torch.long)
    for i in range(x.shape[0]):
        left = n
        while left > 0:
            m = min(batch, left)
            noise = torch.randn((m, *x.shape[1:]), generator=gen, dtype=x.dtype) * sigma
            pred = model(x[i:i + 1] + noise.to(x.device)).argmax(1).cpu()
            out[i] += torch.bincount(pred, minlength=num_classes)
            left -= m
    return out


@dataclass
class SmoothedCertificate:
    """Output of :func:`certify` (NumPy arrays of length ``B``).

    Attributes:
        prediction: ``c_A``, or :data:`ABSTAIN` (-1) where ``p_A ≤ 1/2``.
        radius: ``σ Φ⁻¹(p_A)``; 0 where abstained.
        p_lower: the lower confidence bound ``p_A``.
        sigma, n0, n, alpha: the settings.
    """

    prediction: np.ndarray
    radius: np.ndarray
    p_lower: np.ndarray
    sigma: float
    n0: int
    n: int
    alpha: float

    def certified(self, y: np.ndarray, r: float) -> np.ndarray:
        """Bool per point: ``g`` predicts ``y`` and its radius is at least ``r``."""
        return (self.prediction == np.asarray(y)) & (self.radius >= r)


def certify(model: torch.nn.Module, x: Tensor, *, sigma: float, n0: int, n: int, alpha: float,
            seed: int = 0, batch: int = 500) -> SmoothedCertificate:
    """Cohen et al.'s CERTIFY for every point of ``x``.

    Args:
        model: base classifier (logits); put in eval mode here.
        x: points ``(B, ...)``. sigma: noise standard deviation (input units, > 0).
        n0: copies that select ``c_A``. n: copies that estimate ``p_A``. alpha: 1 − confidence.
        seed: seed of the noise. batch: copies per forward pass.

    Returns:
        :class:`SmoothedCertificate`.
    """
    if sigma <= 0 or n0 < 1 or n < 1:
        raise ValueError(f"need sigma > 0, n0 >= 1, n >= 1; got {sigma}, {n0}, {n}")
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    k = int(model(x[:1]).shape[1])
    c_a = _counts(model, x, sigma, n0, batch, gen, k).argmax(1)
    votes = _counts(model, x, sigma, n, batch, gen, k)
    n_a = votes.gather(1, c_a[:, None])[:, 0].numpy()
    p_low = lower_confidence_bound(n_a, n, alpha)
    ok = p_low > 0.5
    radius = np.where(ok, sigma * sps.norm.ppf(np.clip(p_low, 0.5, 1.0)), 0.0)
    pred = np.where(ok, c_a.numpy(), ABSTAIN)
    return SmoothedCertificate(pred, radius, p_low, float(sigma), int(n0), int(n), float(alpha))


class GaussianAugmentation:
    """Training objective for :func:`analysis.train.fit`: cross-entropy at ``x + σ ε``,
    ``ε ~ N(0, I)`` drawn from torch's global stream (seeded by ``fit``), not clipped.

    Args:
        sigma: noise standard deviation (input units).
    """

    name = "gaussian_augmentation"
    objective = True

    def __init__(self, sigma: float):
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        self.sigma = float(sigma)
        self.params = {"sigma": self.sigma}

    def __call__(self, model: torch.nn.Module, x: Tensor, y: Tensor) -> tuple[Tensor, dict]:
        logits = model(x + self.sigma * torch.randn_like(x))
        loss = F.cross_entropy(logits, y)
        return loss, {"ce": float(loss.detach())}
