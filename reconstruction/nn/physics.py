"""The physics layer: network input, object assembly, far-field model and the losses.

Conventions (``reconstruction.fourier``): objects and patterns are centred; the far field of
an object is ``farfield_torch(obj)`` (orthonormal FFT). Masks are True where a detector pixel is
excluded; excluded pixels never enter a loss nor a normalisation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from reconstruction.fourier import farfield_torch

EPS = 1e-8


def network_input(intensity: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Return the network's input sqrt(I) / max, masked pixels set to 0.

    intensity : (B, 1, N, ...) float, photon counts (any scale), zero frequency at N // 2.
    mask      : same shape, bool, True = excluded; or None.
    Returns (B, 1, N, ...) float32 in [0, 1].
    """
    amp = torch.sqrt(torch.clamp(intensity.float(), min=0.0))
    if mask is not None:
        amp = amp.masked_fill(mask, 0.0)
    peak = amp.flatten(1).amax(dim=1).clamp_min(EPS)
    return amp / peak.view(-1, *([1] * (amp.dim() - 1)))


def pad_to_box(x: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad the last ``ndim`` axes of centred ``x`` (B, C, n, ...) to ``size``, centred.

    With even sizes the centre index n // 2 lands on size // 2, as the Fourier convention needs.
    """
    ndim = x.dim() - 2
    n = x.shape[-1]
    before = (size - n) // 2
    after = size - n - before
    return F.pad(x, (before, after) * ndim)


def soft_support(amplitude: torch.Tensor, threshold: float, width: float) -> torch.Tensor:
    """Return sigmoid((a / max(a) - threshold) / width), (B, 1, n, ...) in (0, 1).

    The maximum is taken per sample and detached, so the threshold is relative (as at inference)
    and amplitudes below it still receive gradients (a hard threshold would freeze them).
    """
    peak = amplitude.detach().flatten(1).amax(dim=1).clamp_min(EPS)
    rel = amplitude / peak.view(-1, *([1] * (amplitude.dim() - 1)))
    return torch.sigmoid((rel - threshold) / width)


def hard_support(amplitude: torch.Tensor, threshold: float = 0.1) -> torch.Tensor:
    """Return the bool support a / max(a) > threshold, per sample, (B, 1, n, ...)."""
    peak = amplitude.flatten(1).amax(dim=1).clamp_min(EPS)
    return amplitude > threshold * peak.view(-1, *([1] * (amplitude.dim() - 1)))


def assemble_object(
    amplitude: torch.Tensor,
    phase: torch.Tensor,
    *,
    box: int,
    threshold: float = 0.1,
    soft_width: float | None = 0.02,
) -> torch.Tensor:
    """Return the complex object amplitude * support * exp(i phase), zero-padded to ``box``.

    amplitude, phase : (B, 1, n, ...) float, the network outputs (phase in radians).
    soft_width       : width of the soft support (training); None = hard support (inference).
    Returns (B, 1, box, ...) complex64, centred.
    """
    amplitude = amplitude.float()
    phase = phase.float()
    if soft_width is None:
        support = hard_support(amplitude, threshold).to(amplitude.dtype)
    else:
        support = soft_support(amplitude, threshold, soft_width)
    modulus = amplitude * support
    obj = torch.complex(modulus * torch.cos(phase), modulus * torch.sin(phase))
    return pad_to_box(obj, box)


def farfield_amplitude(obj: torch.Tensor) -> torch.Tensor:
    """Return |farfield(obj)| over the last ``obj.dim() - 2`` axes, with a gradient-safe root.

    obj : (B, C, N, ...) complex. Returns (B, C, N, ...) float32.
    """
    field = torch.view_as_real(farfield_torch(obj, obj.dim() - 2))
    return torch.sqrt(field.pow(2).sum(-1) + EPS)


def _normalised(amp: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Scale each sample so that the mean of amp^2 over kept pixels is 1 (Parseval, with eps)."""
    dims = tuple(range(1, amp.dim()))
    energy = (amp.pow(2) * keep).sum(dim=dims, keepdim=True)
    count = keep.sum(dim=dims, keepdim=True).clamp_min(1.0)
    return amp * torch.rsqrt(energy / count + EPS)


def amplitude_loss(
    calculated: torch.Tensor,
    measured: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    kind: str = "mae",
) -> torch.Tensor:
    """Return the per-sample reciprocal-space loss between two amplitude patterns, (B,).

    calculated, measured : (B, 1, N, ...) float, |F| of the model and sqrt(I) of the data.
    mask : same shape bool, True = excluded pixel (contributes nothing, not even to the
           normalisation).
    kind : "mae" = mean |a_calc - a_meas| over kept pixels after normalising both to unit mean
           energy; "chi2_pearson" = sum (s a_calc - a_meas)^2 / sum a_meas^2 with the best scale s,
           plus 1 - Pearson correlation of the two amplitudes.
    """
    keep = torch.ones_like(measured) if mask is None else (~mask).to(measured.dtype)
    dims = tuple(range(1, measured.dim()))
    count = keep.sum(dim=dims).clamp_min(1.0)
    if kind == "mae":
        diff = (_normalised(calculated, keep) - _normalised(measured, keep)).abs() * keep
        return diff.sum(dim=dims) / count
    if kind == "chi2_pearson":
        c = calculated * keep
        m = measured * keep
        scale = (c * m).sum(dim=dims) / (c.pow(2).sum(dim=dims) + EPS)
        view = (-1,) + (1,) * (measured.dim() - 1)
        chi2 = ((scale.view(view) * c - m).pow(2)).sum(dim=dims) / (m.pow(2).sum(dim=dims) + EPS)
        cm = (c.sum(dim=dims) / count).view(view)
        mm = (m.sum(dim=dims) / count).view(view)
        dc = (c - cm) * keep
        dm = (m - mm) * keep
        pearson = (dc * dm).sum(dim=dims) / torch.sqrt(
            dc.pow(2).sum(dim=dims) * dm.pow(2).sum(dim=dims) + EPS
        )
        return chi2 + (1.0 - pearson)
    raise ValueError(f"unknown loss kind {kind!r}")


def twin_truth(
    true_amplitude: torch.Tensor, true_phase: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the twin of a centred object, conj(rho(-r)): amplitude and phase (rad) flipped
    about the zero-frequency index (i -> (N - i) mod N on every spatial axis), phase negated.

    Both have the same diffraction intensity, so no measurement can tell them apart.
    """
    axes = tuple(range(2, true_amplitude.dim()))
    shifts = (1,) * len(axes)
    amp = torch.roll(torch.flip(true_amplitude, axes), shifts, axes)
    phase = torch.roll(torch.flip(true_phase, axes), shifts, axes)
    return amp, -phase


def _supervised_terms(
    amplitude: torch.Tensor,
    phase: torch.Tensor,
    true_amplitude: torch.Tensor,
    true_phase: torch.Tensor,
) -> torch.Tensor:
    """Per-sample real-space loss against one truth (see ``supervised_loss``), (B,)."""
    n = amplitude.shape[-1]
    big = true_amplitude.shape[-1]
    start = (big - n) // 2
    index = (slice(None), slice(None)) + (slice(start, start + n),) * (amplitude.dim() - 2)
    ta = true_amplitude[index].float()
    tp = true_phase[index].float()
    dims = tuple(range(1, amplitude.dim()))
    view = (-1,) + (1,) * (amplitude.dim() - 1)
    ta = ta / ta.amax(dim=dims).clamp_min(EPS).view(view)
    pa = amplitude / amplitude.detach().amax(dim=dims).clamp_min(EPS).view(view)
    amp_term = (pa - ta).pow(2).mean(dim=dims)
    phase_term = (ta * (1.0 - torch.cos(phase - tp))).sum(dim=dims) / ta.sum(dim=dims).clamp_min(
        EPS
    )
    return amp_term + phase_term


def supervised_loss(
    amplitude: torch.Tensor,
    phase: torch.Tensor,
    true_amplitude: torch.Tensor,
    true_phase: torch.Tensor,
) -> torch.Tensor:
    """Return a per-sample real-space loss against truths, (B,), blind to the twin image.

    amplitude, phase : (B, 1, n, ...) network outputs; truths are (B, 1, N, ...) in the input
    box (centred) and are cropped to the object box. Amplitudes are compared after dividing
    by their maxima (MSE); phases by amplitude-weighted (1 - cos(delta)), which ignores 2 pi wraps.
    Each sample scores against the closer of the truth and its twin (``twin_truth``): the
    intensity cannot choose between them, and a loss that did would teach the network to
    predict their average (a symmetrised amplitude and a phase shrunk towards zero).
    """
    direct = _supervised_terms(amplitude, phase, true_amplitude, true_phase)
    twin = _supervised_terms(amplitude, phase, *twin_truth(true_amplitude, true_phase))
    return torch.minimum(direct, twin)


def threshold_at(epoch: float, *, start: float, end: float, ramp_epochs: int) -> float:
    """Support threshold ramped linearly from ``start`` to ``end`` over ``ramp_epochs``."""
    if ramp_epochs <= 0:
        return end
    t = min(max(epoch / ramp_epochs, 0.0), 1.0)
    return start + (end - start) * t
