"""The one Fourier convention of the project (NumPy and PyTorch versions).

Arrays are *centred* in both spaces: an object sits around index N // 2 of its box, and a
diffraction pattern has its zero frequency at index N // 2 ("FFT centred", as detectors see it).
The far field of an object ``obj`` is ``fftshift(fftn(ifftshift(obj), norm="ortho"))``, so that
Parseval holds exactly: sum |obj|^2 == sum |farfield(obj)|^2, and the measured intensity is
``|farfield(obj)|^2`` up to a scale factor.
"""

from __future__ import annotations

import numpy as np
import torch


def farfield(obj: np.ndarray) -> np.ndarray:
    """Return the centred far-field (complex) of a centred object, orthonormal FFT over all axes."""
    axes = tuple(range(obj.ndim))
    return np.fft.fftshift(fft_nd(np.fft.ifftshift(obj, axes=axes)), axes=axes)


def backpropagate(field: np.ndarray) -> np.ndarray:
    """Return the centred object whose far field is ``field`` (inverse of ``farfield``)."""
    axes = tuple(range(field.ndim))
    return np.fft.fftshift(fft_nd(np.fft.ifftshift(field, axes=axes), inverse=True), axes=axes)


_TORCH_FFT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.complex64),
                     np.dtype(np.complex128))


def fft_nd(x: np.ndarray, *, inverse: bool = False, norm: str = "ortho") -> np.ndarray:
    """n-D FFT over all axes of a numpy array (no shifts), through torch's FFT (MKL on x86: about
    4x numpy's here), in the array's own precision (complex64 stays complex64, float64 and
    integers give complex128). ``norm`` as in ``numpy.fft``."""
    if x.dtype not in _TORCH_FFT_DTYPES:  # integers, bool, float16, long double: in double
        x = x.astype(np.complex128 if x.dtype.kind == "c" else np.float64)
    t = torch.from_numpy(np.ascontiguousarray(x))
    out = torch.fft.ifftn(t, norm=norm) if inverse else torch.fft.fftn(t, norm=norm)
    return out.numpy()


def farfield_torch(obj: torch.Tensor, ndim: int = 3) -> torch.Tensor:
    """Return the centred far field of centred objects over the last ``ndim`` axes (batched)."""
    dims = tuple(range(-ndim, 0))
    return torch.fft.fftshift(torch.fft.fftn(torch.fft.ifftshift(obj, dim=dims), dim=dims, norm="ortho"), dim=dims)


def backpropagate_torch(field: torch.Tensor, ndim: int = 3) -> torch.Tensor:
    """Return the centred objects whose far fields are ``field`` over the last ``ndim`` axes."""
    dims = tuple(range(-ndim, 0))
    return torch.fft.fftshift(torch.fft.ifftn(torch.fft.ifftshift(field, dim=dims), dim=dims, norm="ortho"), dim=dims)


def intensity_of(obj: np.ndarray) -> np.ndarray:
    """Return |farfield(obj)|^2 as float32, in the same (arbitrary) units as |obj|^2."""
    return (np.abs(farfield(obj)) ** 2).astype(np.float32)


def blur_intensity(intensity: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Circular convolution of a centred intensity with a centred, normalised kernel (float64)."""
    axes = tuple(range(intensity.ndim))
    k = np.fft.ifftshift(np.asarray(kernel, np.float64), axes=axes)
    spec = np.fft.rfftn(np.asarray(intensity, np.float64), axes=axes) * np.fft.rfftn(k, axes=axes)
    return np.maximum(np.fft.irfftn(spec, s=intensity.shape, axes=axes), 0.0)
