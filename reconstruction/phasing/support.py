"""Supports: from the autocorrelation, a box, an object; shrink-wrap by FFT Gaussian blur (torch).

NumPy helpers work on *centred* arrays; the torch ``ShrinkWrapper`` works in the engine's
FFT-native (unshifted) layout, where a circular blur needs no shift.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from reconstruction.errors import ConfigError, InvalidDataError
from reconstruction.fourier import backpropagate
from reconstruction.phasing import kernels


@dataclass
class ShrinkWrap:
    """Shrink-wrap settings (Marchesini et al. 2003).

    Every ``period`` iterations the object amplitude is blurred by a Gaussian of ``sigma``
    pixels (relaxed by ``sigma_decay`` per update down to ``sigma_min``) and thresholded at
    ``threshold`` of its maximum; the support may grow and shrink. An update that would leave
    less than ``min_fraction`` or more than ``max_fraction`` of the box is refused.
    """

    sigma: float = 3.0
    sigma_min: float = 1.0
    sigma_decay: float = 0.95
    threshold: float = 0.15
    period: int = 20
    min_fraction: float = 1e-3
    max_fraction: float = 0.5

    def __post_init__(self) -> None:
        if not (self.sigma > 0 and self.sigma_min > 0 and 0 < self.sigma_decay <= 1):
            raise ConfigError(f"shrink-wrap sigma must be > 0 and decay in (0, 1]: {self}")
        if not 0 < self.threshold < 1:
            raise ConfigError(f"shrink-wrap threshold must be in (0, 1), got {self.threshold}")
        if self.period < 1:
            raise ConfigError(f"shrink-wrap period must be >= 1, got {self.period}")
        if not 0 <= self.min_fraction < self.max_fraction <= 1:
            raise ConfigError("shrink-wrap needs 0 <= min_fraction < max_fraction <= 1")

    def as_dict(self) -> dict:
        """Settings as a JSON-friendly dict."""
        return asdict(self)


def resolve_shrinkwrap(value, *, default_on: bool) -> ShrinkWrap | None:
    """None -> the default when ``default_on``; True/False; a dict of settings; a ShrinkWrap."""
    if value is None:
        return ShrinkWrap() if default_on else None
    if value is False:
        return None
    if value is True:
        return ShrinkWrap()
    if isinstance(value, ShrinkWrap):
        return value
    if isinstance(value, dict):
        try:
            return ShrinkWrap(**value)
        except TypeError as exc:
            raise ConfigError(f"unknown shrink-wrap setting: {exc}") from None
    raise ConfigError(f"shrinkwrap must be None, a bool, a dict or ShrinkWrap, got {value!r}")


def names_computed_support(text: str) -> bool:
    """True if ``text`` names a support the engine computes: "auto", "box" or a box size (pixels)."""
    return text in ("auto", "box") or (text.isascii() and text.isdigit())


def autocorrelation_support(
    intensity: np.ndarray, mask: np.ndarray | None = None, *, threshold: float = 0.1
) -> np.ndarray:
    """Centred support from the object's autocorrelation |F^-1(I)| above ``threshold`` of its max.

    The autocorrelation spans twice the object, so this is a loose start for shrink-wrap.
    """
    data = np.where(mask, 0.0, intensity) if mask is not None else np.asarray(intensity)
    auto = np.abs(backpropagate(data.astype(np.complex64)))
    auto = gaussian_blur_numpy(auto, 1.0)
    support = auto > threshold * auto.max()
    if support.mean() > 0.5:  # very noisy data: fall back to a box of half the size
        return box_support(intensity.shape)
    return support


def box_support(shape: tuple[int, ...], size=None) -> np.ndarray:
    """Centred box support; ``size`` an int or per-axis sizes in pixels (default half the box)."""
    if size is None:
        size = tuple(n // 2 for n in shape)
    elif np.isscalar(size):
        size = (int(size),) * len(shape)
    if len(size) != len(shape) or any(not 0 < s <= n for s, n in zip(size, shape)):
        raise ConfigError(f"box support size {size} does not fit in the box {shape}")
    out = np.zeros(shape, bool)
    out[tuple(slice(n // 2 - s // 2, n // 2 - s // 2 + s) for s, n in zip(size, shape))] = True
    return out


def support_from_object(obj: np.ndarray, *, threshold: float = 0.1) -> np.ndarray:
    """Support where |obj| exceeds ``threshold`` of its maximum (e.g. a network prediction)."""
    amp = np.abs(obj)
    if amp.max() <= 0:
        raise InvalidDataError("the initial object is zero everywhere: no support can be derived")
    return amp > threshold * amp.max()


def gaussian_blur_numpy(values: np.ndarray, sigma: float) -> np.ndarray:
    """Circular Gaussian blur (sigma in pixels) by FFT multiplication, real input."""
    spectrum = np.fft.rfftn(values)
    axes = tuple(range(values.ndim))
    return np.fft.irfftn(spectrum * _kernel_numpy(values.shape, sigma), s=values.shape, axes=axes)


def _gaussian_factors(shape, sigma) -> list[np.ndarray]:
    """Per-axis factors of the Gaussian transfer function (rfft layout on the last axis),
    float64, each shaped to broadcast against the others: their product is the 3D kernel."""
    freqs = [np.fft.fftfreq(n) for n in shape[:-1]] + [np.fft.rfftfreq(shape[-1])]
    return [
        np.exp(-2 * math.pi**2 * sigma**2 * f**2).reshape(
            [-1 if a == axis else 1 for a in range(len(shape))]
        )
        for axis, f in enumerate(freqs)
    ]


def _kernel_numpy(shape, sigma):
    return functools.reduce(np.multiply, _gaussian_factors(shape, sigma))


class ShrinkWrapper:
    """Apply ``ShrinkWrap`` updates to a batch of supports on the engine's device."""

    def __init__(self, settings: ShrinkWrap, shape: tuple[int, ...], device: torch.device) -> None:
        self.settings = settings
        self.shape = shape
        self.ndim = len(shape)
        self.sigma = settings.sigma
        self.device = device
        self.updates = 0
        self.refused = 0
        self._kernel_sigma = None
        self._kernel = None
        self._transfer_sigma = None
        self._transfer = None
        # FFTW plans for the blur (``fftw.RealConvolution``), set by the engine on the CPU
        self.convolution = None
        # the fused CPU threshold (numba); False on other devices or without numba
        self.fused = device.type == "cpu" and kernels.available()

    def kernel(self) -> torch.Tensor:
        """Gaussian transfer function (rfft layout) for the current sigma, the outer product of
        the 1D factors built on the device (sigma changes at every update until sigma_min)."""
        if self._kernel_sigma != self.sigma:
            factors = _gaussian_factors(self.shape, self.sigma)
            k = functools.reduce(
                torch.mul, (torch.from_numpy(g.astype(np.float32)).to(self.device) for g in factors)
            )
            # complex with zero imaginary part: a float factor would be cast at every update
            self._kernel = torch.complex(k, torch.zeros_like(k)).contiguous()
            self._kernel_sigma = self.sigma
        return self._kernel

    def transfer(self) -> np.ndarray:
        """The Gaussian transfer function divided by the box size, float32 numpy (rfft layout),
        for the FFTW blur's unnormalised transforms."""
        if self._transfer_sigma != self.sigma:
            k = _kernel_numpy(self.shape, self.sigma) / math.prod(self.shape)
            self._transfer = k.astype(np.float32)
            self._transfer_sigma = self.sigma
        return self._transfer

    def blur(self, amplitude: torch.Tensor) -> torch.Tensor:
        """Amplitudes (B, *shape) blurred by the current sigma (FFTW plans when the engine set
        them, else torch's real FFT); the FFTW result is a view of its buffer."""
        if self.convolution is not None:
            return torch.from_numpy(self.convolution.convolve(amplitude.numpy(), self.transfer()))
        dims = tuple(range(-self.ndim, 0))
        spectrum = torch.fft.rfftn(amplitude, dim=dims).mul_(self.kernel())
        return torch.fft.irfftn(spectrum, s=self.shape, dim=dims)

    def update(self, amplitude: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
        """New supports (B, *shape) float 0/1 from amplitudes (B, *shape); keeps refused ones."""
        blurred = self.blur(amplitude)
        flat = blurred.reshape(blurred.shape[0], -1)
        if self.fused and support.dtype == torch.float32:  # one pass instead of five
            new = torch.empty_like(flat)
            counts = kernels.threshold_support(flat.numpy(), self.settings.threshold, new.numpy())
            fraction = torch.from_numpy(counts / flat.shape[1])
        else:
            peak = flat.amax(dim=1).clamp_min(1e-30)
            new = (flat > self.settings.threshold * peak[:, None]).to(support.dtype)
            fraction = new.mean(dim=1)
        ok = (fraction >= self.settings.min_fraction) & (fraction <= self.settings.max_fraction)
        if bool(ok.all()):
            out = new.reshape(support.shape)
        else:
            self.refused += int((~ok).sum())
            out = torch.where(ok[:, None], new, support.reshape(new.shape)).reshape(support.shape)
        self.updates += 1
        self.sigma = max(self.settings.sigma_min, self.sigma * self.settings.sigma_decay)
        return out
