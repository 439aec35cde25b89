"""Compare a reconstruction with the true object (simulations): SSIM, relative error, phase RMS."""

from __future__ import annotations

from typing import Any

import numpy as np
from skimage.metrics import structural_similarity

from reconstruction.errors import InvalidDataError
from reconstruction.metrics.alignment import align_to


def compare_to_truth(
    obj: np.ndarray, truth: np.ndarray, *, support: np.ndarray | None = None
) -> dict[str, Any]:
    """Align ``obj`` onto ``truth`` and measure how close it is.

    Parameters
    ----------
    obj : (Z, Y, X) or (Y, X) complex, the reconstruction.
    truth : same shape, complex, the true object.
    support : same shape, bool, where the phase error is measured; default |truth| > 0.1 max.

    Returns
    -------
    dict with ``ssim`` (amplitude SSIM, both amplitudes normalised to max 1), ``rel_error``
    ||a - t|| / ||t|| over the box, ``phase_rms`` (rad, inside the support),
    ``amplitude_rel_error``, the alignment (``shift`` pixels, ``twin``, ``ramp`` rad/pixel,
    ``phase_offset`` rad) and ``aligned`` (the aligned object, complex128).
    """
    obj = np.asarray(obj)
    truth = np.asarray(truth)
    if obj.shape != truth.shape:
        raise InvalidDataError(f"the object has shape {obj.shape} but the truth has {truth.shape}")
    truth = truth.astype(np.complex128)
    if support is None:
        support = np.abs(truth) > 0.1 * np.abs(truth).max()
    support = np.asarray(support, bool)
    aligned, how = align_to(obj, truth)
    t_norm = np.linalg.norm(truth)
    rel_error = float(np.linalg.norm(aligned - truth) / t_norm) if t_norm else float("nan")
    amp_a, amp_t = np.abs(aligned), np.abs(truth)
    amp_norm = np.linalg.norm(amp_t)
    amp_rel = float(np.linalg.norm(amp_a - amp_t) / amp_norm) if amp_norm else float("nan")
    dphi = np.angle(aligned[support] * np.conj(truth[support]))
    phase_rms = float(np.sqrt(np.mean(dphi**2))) if dphi.size else float("nan")
    a_n = amp_a / amp_a.max() if amp_a.max() > 0 else amp_a
    t_n = amp_t / amp_t.max() if amp_t.max() > 0 else amp_t
    win = min(7, *(n if n % 2 else n - 1 for n in obj.shape))
    ssim = float(structural_similarity(t_n, a_n, data_range=1.0, win_size=win))
    return {
        "ssim": ssim,
        "rel_error": rel_error,
        "amplitude_rel_error": amp_rel,
        "phase_rms": phase_rms,
        "shift": list(how.shift),
        "twin": how.twin,
        "ramp": list(how.ramp),
        "phase_offset": float(np.angle(how.scale)),
        "aligned": aligned,
    }
