"""The project's one Fourier convention against analytic transforms."""

import numpy as np
import pytest
import torch

from reconstruction.fourier import (
    backpropagate,
    backpropagate_torch,
    farfield,
    farfield_torch,
    fft_nd,
    intensity_of,
)


def test_parseval_holds_for_the_orthonormal_farfield():
    rng = np.random.default_rng(0)
    obj = (rng.normal(size=(16, 12, 10)) + 1j * rng.normal(size=(16, 12, 10))).astype(np.complex64)
    assert np.isclose(np.sum(np.abs(obj) ** 2), np.sum(np.abs(farfield(obj)) ** 2), rtol=1e-5)


def test_backpropagate_inverts_farfield():
    rng = np.random.default_rng(1)
    obj = rng.normal(size=(8, 8, 8)) + 1j * rng.normal(size=(8, 8, 8))
    assert np.allclose(backpropagate(farfield(obj)), obj, atol=1e-10)


def test_centred_point_scatters_uniformly_with_zero_phase():
    obj = np.zeros((8, 8), complex)
    obj[4, 4] = 1.0
    field = farfield(obj)
    assert np.allclose(field, 1.0 / 8.0)


def test_centred_box_gives_a_real_dirichlet_kernel_peaked_at_the_centre():
    n, w = 32, 7
    obj = np.zeros(n)
    obj[n // 2 - w // 2 : n // 2 + w // 2 + 1] = 1.0
    field = farfield(obj)
    q = np.arange(n) - n // 2
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = np.sin(np.pi * w * q / n) / np.sin(np.pi * q / n)
    expected[n // 2] = w
    assert np.allclose(field.imag, 0.0, atol=1e-12)
    assert np.allclose(field.real, expected / np.sqrt(n), atol=1e-12)
    assert np.argmax(intensity_of(obj)) == n // 2


def test_torch_and_numpy_conventions_agree_on_batches():
    rng = np.random.default_rng(2)
    obj = (rng.normal(size=(2, 6, 6, 6)) + 1j * rng.normal(size=(2, 6, 6, 6))).astype(np.complex64)
    out = farfield_torch(torch.from_numpy(obj), ndim=3).numpy()
    for b in range(2):
        assert np.allclose(out[b], farfield(obj[b]), atol=1e-5)
    back = backpropagate_torch(torch.from_numpy(out), ndim=3).numpy()
    assert np.allclose(back, obj, atol=1e-5)


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [(np.float32, np.complex64), (np.complex64, np.complex64), (np.float64, np.complex128),
     (np.int16, np.complex128), (np.bool_, np.complex128), (np.float16, np.complex128),
     (np.longdouble, np.complex128), (np.clongdouble, np.complex128)],
)
def test_fft_nd_takes_every_numeric_dtype_and_matches_numpy(dtype, expected):
    x = (np.arange(60).reshape(3, 4, 5) % 7).astype(dtype)
    out = fft_nd(x)
    assert out.dtype == expected
    ref = np.fft.fftn(x.astype(np.complex128), norm="ortho")
    assert np.allclose(out, ref, atol=1e-4 * np.abs(ref).max())
    assert np.allclose(fft_nd(out, inverse=True), x.astype(np.complex128), atol=1e-3)
