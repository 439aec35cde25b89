"""Partial coherence: the calculated intensity blurred by a point-spread function (PSF) that is
estimated from the data while phasing (PyNX's ``psf``, cohere's ``pc``).

A partially coherent beam, a detector's point spread and a finite energy bandwidth all blur the
measured pattern: I_meas ≈ |F(ρ)|² ⊗ K with a normalised kernel K. A coherent model fitted to
such data puts the missing contrast into a wrong object (a smaller, rougher crystal). With a
PSF the modulus step becomes F ← F √(I_meas / (|F|² ⊗ K)) and K is refined every ``period``
iterations by a Richardson-Lucy step, K ← K · [(I_meas / (|F|² ⊗ K)) ⋆ |F|²] / Σ|F|², kept
non-negative, inside a window of ± ``half_width`` pixels and normalised to sum 1.

Arrays here are in the engine's FFT-native (unshifted) layout: the PSF's centre is pixel 0 and
convolutions are circular, done with real FFTs over the last ``ndim`` axes of a batch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from reconstruction.errors import ConfigError, InvalidDataError

_TINY = 1e-30
_MODELS = ("gaussian", "lorentzian", "pseudo-voigt")


@dataclass
class PartialCoherence:
    """PSF settings: the initial kernel and how it is refined.

    model : "gaussian" (default), "pseudo-voigt" or "lorentzian" initial kernel. In 3D a
        Lorentzian's tails hold most of its weight (its integral grows with the window), so even
        PyNX's 5 % share spreads 4 % of every speckle over the window as a diffuse background:
        on 16 simulated 64³ patterns "pseudo-voigt,0.5,0.05,20" raised the relative error of
        10, the Gaussian lowered the median (docs/phasing.md).
    fwhm : full width at half maximum of the initial kernel, pixels (the same on every axis).
    eta : Lorentzian share of the pseudo-Voigt, 0..1.
    period : iterations between Richardson-Lucy updates of the kernel; 0 keeps it fixed.
    start : share of the run's iterations done without PSF before it is switched on (0..1): a
        PSF fitted to a wandering early iterate absorbs the object's errors and grows too wide.
    half_width : the kernel is zero beyond this many pixels from its centre along any axis (a
        small window leaves the fit few degrees of freedom to absorb the object's errors with).
    """

    model: str = "gaussian"
    fwhm: float = 0.5
    eta: float = 0.05
    period: int = 20
    start: float = 0.5
    half_width: int = 3

    def __post_init__(self) -> None:
        if self.model not in _MODELS:
            raise ConfigError(f"PSF model must be one of {', '.join(_MODELS)}, got {self.model!r}")
        if not (math.isfinite(self.fwhm) and 0 < self.fwhm <= 64):
            raise ConfigError(f"PSF FWHM must be in (0, 64] pixels, got {self.fwhm}")
        if not 0 <= self.eta <= 1:
            raise ConfigError(f"PSF eta (Lorentzian share) must be in [0, 1], got {self.eta}")
        if self.period < 0:
            raise ConfigError(f"PSF update period must be >= 0, got {self.period}")
        if not 0 <= self.start < 1:
            raise ConfigError(
                f"PSF start must be a share of the iterations in [0, 1), got {self.start}"
            )
        if self.half_width < 1:
            raise ConfigError(f"PSF half width must be >= 1 pixel, got {self.half_width}")

    def as_dict(self) -> dict:
        """Settings as a JSON-friendly dict."""
        return asdict(self)


def parse_psf(text: str) -> PartialCoherence:
    """Settings from PyNX's notation "MODEL,FWHM[,ETA][,PERIOD]" (e.g. "gaussian,0.5,20",
    "pseudo-voigt,1,0.05,20") or plain "FWHM[,PERIOD]" (a Gaussian); "on" / "default" gives the
    defaults."""
    text = text.strip().lower()
    if text in ("on", "default", "true", "yes", "1"):
        return PartialCoherence()
    parts = [p.strip() for p in text.split(",") if p.strip()]
    model = "gaussian"
    if parts and parts[0] in _MODELS:
        model = parts.pop(0)
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise ConfigError(
            f"cannot read the PSF {text!r}: expected MODEL,FWHM[,ETA][,PERIOD] such as "
            "'gaussian,0.5,20' or 'pseudo-voigt,1,0.05,20'"
        ) from None
    if not numbers:
        return PartialCoherence(model=model)
    fwhm = numbers[0]
    rest = numbers[1:]
    eta = PartialCoherence.eta  # only a pseudo-Voigt reads it
    if model == "pseudo-voigt" and rest and rest[0] <= 1 and len(rest) <= 2:
        eta = rest.pop(0)
    if len(rest) > 1:
        raise ConfigError(f"too many numbers in the PSF {text!r}: MODEL,FWHM[,ETA][,PERIOD]")
    period = int(rest[0]) if rest else 20
    if rest and rest[0] != period:
        raise ConfigError(f"the PSF update period must be a whole number of iterations: {text!r}")
    return PartialCoherence(model=model, fwhm=fwhm, eta=eta, period=period)


def resolve_psf(value) -> PartialCoherence | None:
    """None / False / "" / "off" -> no PSF; True -> defaults; a dict of settings, a string
    (``parse_psf``) or a PartialCoherence."""
    if value is None or value is False:
        return None
    if isinstance(value, str) and value.strip().lower() in ("", "off", "none", "false", "no", "0"):
        return None
    if value is True:
        return PartialCoherence()
    if isinstance(value, PartialCoherence):
        return value
    if isinstance(value, str):
        return parse_psf(value)
    if isinstance(value, dict):
        try:
            return PartialCoherence(**value)
        except TypeError as exc:
            raise ConfigError(f"unknown PSF setting: {exc}") from None
    raise ConfigError(
        f"psf must be None, a bool, a string, a dict or PartialCoherence, got {value!r}"
    )


def _offsets(shape: tuple[int, ...]) -> list[np.ndarray]:
    """Signed integer offsets from pixel 0 along each axis (unshifted layout), broadcastable."""
    out = []
    for axis, n in enumerate(shape):
        d = np.fft.fftfreq(n, 1.0 / n)
        view = [1] * len(shape)
        view[axis] = n
        out.append(d.reshape(view))
    return out


def window(shape: tuple[int, ...], half_width: int) -> np.ndarray:
    """Bool array (unshifted): pixels within ``half_width`` of pixel 0 along every axis."""
    inside = np.ones(shape, bool)
    for d in _offsets(shape):
        inside = inside & (np.abs(d) <= half_width)
    return inside


def psf_kernel(shape: tuple[int, ...], settings: PartialCoherence) -> np.ndarray:
    """The initial kernel, float32, unshifted (centre at pixel 0), zero outside the window,
    summing to 1."""
    r2 = sum(d.astype(np.float64) ** 2 for d in _offsets(shape))
    inside = window(shape, settings.half_width)
    f2 = settings.fwhm**2
    gauss = np.exp(-4.0 * math.log(2.0) * r2 / f2) * inside
    lorentz = inside / (1.0 + 4.0 * r2 / f2)
    eta = {"gaussian": 0.0, "lorentzian": 1.0}.get(settings.model, settings.eta)
    kernel = (1.0 - eta) * gauss / gauss.sum() + eta * lorentz / lorentz.sum()
    return (kernel / kernel.sum()).astype(np.float32)


def fwhm_of(kernel: np.ndarray) -> list[float]:
    """FWHM (pixels) along each axis of a centred kernel (peak at N // 2): that of the Gaussian
    with the same ratio of the two neighbours to the peak, exp(-1 / (2 σ²)), so exact for a
    sampled Gaussian and blind to a faint wide tail; 0 for a single-pixel kernel, at most the
    axis length (a flat kernel)."""
    k = np.asarray(kernel, np.float64)
    centre = tuple(n // 2 for n in k.shape)
    peak = k[centre]
    out = []
    for axis, n in enumerate(k.shape):
        if peak <= 0 or n < 3:
            out.append(float("nan"))
            continue
        sides = []
        for step in (-1, 1):
            index = list(centre)
            index[axis] = (centre[axis] + step) % n
            sides.append(k[tuple(index)])
        ratio = min(float(np.mean(sides)) / peak, 0.999999)
        if ratio <= 0:
            out.append(0.0)
            continue
        sigma = math.sqrt(-1.0 / (2.0 * math.log(ratio)))
        out.append(min(2.0 * math.sqrt(2.0 * math.log(2.0)) * sigma, float(n)))  # flat: n
    return out


def start_kernel(kernel: np.ndarray, shape: tuple[int, ...], inside: np.ndarray) -> np.ndarray:
    """A centred kernel as a starting kernel: float32, unshifted, non-negative, zero outside
    ``inside`` (unshifted window), summing to 1; InvalidDataError when it cannot be one."""
    k = np.asarray(kernel, np.float64)
    if k.shape != tuple(shape):
        raise InvalidDataError(f"the starting PSF has shape {k.shape}, the data {tuple(shape)}")
    if not np.isfinite(k).all():
        raise InvalidDataError("the starting PSF holds NaN or infinite values")
    k = np.fft.ifftshift(np.clip(k, 0.0, None)) * inside
    if k.sum() <= 0:
        raise InvalidDataError("the starting PSF is zero inside its window")
    return (k / k.sum()).astype(np.float32)


class PsfModel:
    """One kernel per run of a batch (B, *shape) float32 on the engine's device, and its
    transform; ``blur`` convolves calculated intensities with it, ``update`` refines it.

    ``initial`` : a centred kernel of ``shape`` to start from (a result's fitted ``psf``)
    instead of the settings' model and FWHM; it is cut to the settings' window and normalised.
    """

    def __init__(
        self,
        settings: PartialCoherence,
        shape: tuple[int, ...],
        batch: int,
        device: torch.device,
        initial: np.ndarray | None = None,
    ) -> None:
        self.settings = settings
        self.shape = tuple(shape)
        self.dims = tuple(range(-len(shape), 0))
        inside = window(self.shape, settings.half_width)
        if initial is None:
            start = psf_kernel(self.shape, settings)
        else:
            start = start_kernel(initial, self.shape, inside)
        k = torch.from_numpy(start).to(device)
        self.kernel = k.expand((batch,) + self.shape).clone()
        self.inside = torch.from_numpy(inside).to(device)
        self._otf = torch.fft.rfftn(self.kernel, dim=self.dims)
        self._transfer = None  # the FFTW blur's transfer function (``_otf`` / N, numpy)
        self.updates = 0
        # FFTW plans for the blur (``fftw.RealConvolution``), set by the engine on the CPU
        self.convolution = None

    def blur(self, m2: torch.Tensor) -> torch.Tensor:
        """|F|² ⊗ K per run: (B, *shape) float32 (a new tensor), never below K(0) |F|².

        A non-negative kernel gives (|F|² ⊗ K)(x) >= K(0) |F(x)|² exactly; float32 round-off
        of the transforms (about 1e-7 of the brightest speckle) does not, and where it left the
        blur near zero the modulus step multiplied a small F by sqrt(I) / 0. The bound keeps
        |F| sqrt(I / (|F|² ⊗ K)) <= sqrt(I / K(0)); a floor of 1e-7 of the mean intensity
        keeps the Richardson-Lucy ratio finite where F is zero.
        """
        out, centre, floor = self.blur_unbounded(m2)
        if self.convolution is not None:  # not the FFTW buffer, which ``update`` reuses
            out = out.clone()
        return self.bound(out, m2, centre, floor)

    def blur_unbounded(self, m2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(|F|² ⊗ K as the transforms give it, K(0) per run (B,), the floor per run (B,)): the
        parts of ``blur`` for a caller that applies the bound in its own pass. With FFTW plans
        the blur is a view of their buffer, which the next blur or ``update`` overwrites."""
        size = math.prod(self.shape)
        if self.convolution is not None:  # FFTW: the output is a view of its buffer
            if self._transfer is None:
                self._transfer = (self._otf / size).numpy()
            out = torch.from_numpy(self.convolution.convolve(m2.numpy(), self._transfer))
            mean = torch.from_numpy(self.convolution.totals()) / size
        else:
            spec = torch.fft.rfftn(m2, dim=self.dims)
            mean = spec.reshape(spec.shape[0], -1)[:, 0].real / size
            spec.mul_(self._otf)
            out = torch.fft.irfftn(spec, s=self.shape, dim=self.dims)
        centre = self.kernel.reshape(self.kernel.shape[0], -1)[:, 0]
        return out, centre, (1e-7 * mean).clamp_min(_TINY)

    def bound(
        self, out: torch.Tensor, m2: torch.Tensor, centre: torch.Tensor, floor: torch.Tensor
    ) -> torch.Tensor:
        """``out`` raised to max(out, K(0) |F|², floor) in place (see ``blur``); returns it."""
        view = (-1,) + (1,) * len(self.shape)
        torch.maximum(out, m2 * centre.view(view), out=out)
        return out.clamp_min_(floor.view(view))

    def update(
        self, m2: torch.Tensor, blurred: torch.Tensor, measured: torch.Tensor, weight: torch.Tensor
    ) -> None:
        """One Richardson-Lucy step of the kernels from |F|² (``m2``), its blur, and the
        measured intensity on the same scale; pixels of ``weight`` 0 (masked, free) count as
        already fitted (ratio 1)."""
        ratio = weight * (measured / blurred) + (1.0 - weight)
        conv = self.convolution
        if conv is not None:  # FFTW: the correlation is a view of its buffer
            transfer = np.conj(conv.spectrum(m2.numpy())) / math.prod(self.shape)
            corr = torch.from_numpy(conv.convolve(ratio.numpy(), transfer))
        else:
            corr = torch.fft.irfftn(
                torch.fft.rfftn(ratio, dim=self.dims) * torch.fft.rfftn(m2, dim=self.dims).conj(),
                s=self.shape,
                dim=self.dims,
            )
        total = m2.reshape(m2.shape[0], -1).sum(dim=1).clamp_min(_TINY)
        corr.div_(total.view((-1,) + (1,) * len(self.shape)))
        k = self.kernel * corr.clamp_min_(0.0) * self.inside
        norm = k.reshape(k.shape[0], -1).sum(dim=1)
        ok = norm > _TINY  # a degenerate step (no signal) keeps the previous kernel
        k[ok] = k[ok] / norm[ok].view((-1,) + (1,) * len(self.shape))
        k[~ok] = self.kernel[~ok]
        self.kernel = k
        if conv is not None:
            self._otf = torch.from_numpy(conv.spectrum(k.numpy()))
        else:
            self._otf = torch.fft.rfftn(self.kernel, dim=self.dims)
        self._transfer = None
        self.updates += 1

    def centred(self, run: int) -> np.ndarray:
        """The kernel of one run, centred (peak at N // 2), float32 numpy."""
        return np.fft.fftshift(self.kernel[run].cpu().numpy())
