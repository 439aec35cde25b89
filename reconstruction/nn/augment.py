"""Physically valid transforms of a diffraction pattern, for fine-tuning on a few patterns.

Unsupervised training only sees the pattern, so every augmentation must map a measurable
pattern to another measurable pattern:

- a flip or 90-degree rotation of the pattern about its zero frequency is the pattern of the
  flipped / rotated object (a centred flip is ``i -> (N - i) mod N``, i.e. flip then roll by 1);
- a small rotation of the pattern is the pattern of the rotated object (interpolated);
- a zoom of the pattern by ``s`` is the pattern of the object scaled by ``1 / s``, i.e. another
  oversampling ratio; pixels that come from outside the measured box are masked;
- a small *shift of the pattern* is the pattern of the object times a linear phase ramp (a
  slightly off-centre Bragg peak). A shift of the *object* changes nothing in the intensity, so
  it is not an augmentation at all in unsupervised training;
- Poisson re-sampling keeps a random fraction of the photons (binomial thinning of counts),
  i.e. the same object measured with a shorter exposure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random transforms (all applied with their own probability)."""

    flips: bool = True
    rot90: bool = True
    max_rotation_deg: float = 10.0
    zoom_range: tuple[float, float] = (0.85, 1.15)
    max_shift_px: int = 2
    photon_fraction_range: tuple[float, float] = (0.2, 1.0)
    p_rotation: float = 0.5
    p_zoom: float = 0.5
    p_shift: float = 0.5
    p_thin: float = 0.5


def centred_flip(x: np.ndarray, axis: int) -> np.ndarray:
    """Flip ``x`` about index N // 2 along ``axis`` (i -> (N - i) mod N)."""
    return np.roll(np.flip(x, axis=axis), 1, axis=axis)


def centred_rot90(x: np.ndarray, axes: tuple[int, int]) -> np.ndarray:
    """Rotate ``x`` by 90 degrees in the plane ``axes`` about the centre index N // 2."""
    y = np.rot90(x, 1, axes=axes)
    return np.roll(y, 1, axis=axes[0])


def _rotation_matrix(rng: np.random.Generator, ndim: int, max_deg: float) -> np.ndarray:
    """A random rotation by at most ``max_deg`` about a random axis (3D) or the origin (2D)."""
    angle = math.radians(rng.uniform(-max_deg, max_deg))
    c, s = math.cos(angle), math.sin(angle)
    if ndim == 2:
        return np.array([[c, -s], [s, c]])
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def _affine(
    intensity: np.ndarray, mask: np.ndarray, matrix: np.ndarray, shift: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Resample about the centre N // 2: output(o) = input(matrix @ (o - c) + c + shift).

    Pixels whose source lies outside the box or touches a masked pixel become masked.
    """
    centre = np.array([n // 2 for n in intensity.shape], dtype=float)
    offset = centre + shift - matrix @ centre
    out = ndimage.affine_transform(
        intensity, matrix, offset=offset, order=1, mode="constant", cval=0.0
    )
    bad = ndimage.affine_transform(
        mask.astype(np.float32), matrix, offset=offset, order=1, mode="constant", cval=1.0
    )
    return np.clip(out, 0.0, None).astype(np.float32), bad > 1e-3


def augment_pattern(
    intensity: np.ndarray,
    mask: np.ndarray,
    rng: np.random.Generator,
    config: AugmentConfig = AugmentConfig(),
) -> tuple[np.ndarray, np.ndarray]:
    """Return a randomly transformed (intensity, mask) pair of the same shape.

    intensity : (N, N, N) or (N, N) float32 photon counts, zero frequency at N // 2.
    mask      : same shape bool, True = excluded.
    """
    inten = np.asarray(intensity, dtype=np.float32)
    m = np.asarray(mask, dtype=bool)
    ndim = inten.ndim
    if config.flips:
        for axis in range(ndim):
            if rng.random() < 0.5:
                inten, m = centred_flip(inten, axis), centred_flip(m, axis)
    if config.rot90:
        for _ in range(int(rng.integers(0, 4))):
            a, b = rng.choice(ndim, size=2, replace=False)
            axes = (int(a), int(b))
            inten, m = centred_rot90(inten, axes), centred_rot90(m, axes)
    matrix = np.eye(ndim)
    shift = np.zeros(ndim)
    if config.max_rotation_deg > 0 and rng.random() < config.p_rotation:
        matrix = _rotation_matrix(rng, ndim, config.max_rotation_deg)
    if rng.random() < config.p_zoom:
        # output(o) = input(c + (o - c) / s): the pattern is magnified by s
        matrix = matrix / rng.uniform(*config.zoom_range)
    if config.max_shift_px > 0 and rng.random() < config.p_shift:
        shift = rng.uniform(-config.max_shift_px, config.max_shift_px, size=ndim)
    if not np.allclose(matrix, np.eye(ndim)) or np.any(shift):
        inten, m = _affine(inten, m, matrix, shift)
    if rng.random() < config.p_thin:
        fraction = rng.uniform(*config.photon_fraction_range)
        counts = np.rint(np.clip(inten, 0.0, None)).astype(np.int64)
        inten = rng.binomial(counts, fraction).astype(np.float32)
    inten = np.where(m, 0.0, inten).astype(np.float32)
    return np.ascontiguousarray(inten), np.ascontiguousarray(m)


class AugmentedPatterns(torch.utils.data.Dataset):
    """``n`` augmented copies drawn from a few patterns; item ``i`` is deterministic per seed.

    patterns : list of (intensity, mask) numpy pairs, each (N, ...) of the model's input shape.
    Items are {"intensity": (1, N, ...) float32, "mask": (1, N, ...) bool} (wrap them in
    ``NetworkItems`` for training).
    """

    def __init__(
        self,
        patterns: list[tuple[np.ndarray, np.ndarray]],
        n: int,
        *,
        seed: int = 0,
        augment: bool = True,
        config: AugmentConfig = AugmentConfig(),
    ) -> None:
        if not patterns:
            raise ValueError("at least one pattern is needed")
        self.patterns = patterns
        self.n = n
        self.seed = seed
        self.augment = augment
        self.config = config

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        intensity, mask = self.patterns[index % len(self.patterns)]
        if self.augment:
            rng = np.random.default_rng([self.seed, index])
            intensity, mask = augment_pattern(intensity, mask, rng, self.config)
        return {
            "intensity": torch.from_numpy(np.asarray(intensity, dtype=np.float32))[None],
            "mask": torch.from_numpy(np.asarray(mask, dtype=bool))[None],
        }
