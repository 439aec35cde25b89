"""Centrosymmetry of shapes with known values: symmetric bodies, a tetrahedron, a triangle."""

from __future__ import annotations

import numpy as np
import pytest

from reconstruction.errors import InvalidDataError
from reconstruction.metrics import centrosymmetry, twin_of


def tetrahedron(n: int = 48, half_width: float = 9.0, centre=(20.0, 23.0, 26.0)) -> np.ndarray:
    """A uniform regular tetrahedron: the points on the inner side of its four {111} faces."""
    r = np.indices((n,) * 3).astype(float) - np.reshape(centre, (3, 1, 1, 1))
    normals = np.array([(1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1)]) / np.sqrt(3)
    return np.all(np.tensordot(normals, r, axes=1) <= half_width, axis=0).astype(float)


def test_a_centrosymmetric_body_scores_one_wherever_it_sits_and_whatever_its_scale():
    g = np.indices((40, 40, 40)).astype(float)
    ellipsoid = (((g[0] - 13) / 7) ** 2 + ((g[1] - 22) / 5) ** 2 + ((g[2] - 18.5) / 6) ** 2) <= 1
    cube = np.zeros((40, 40, 40))
    cube[5:15, 20:27, 8:20] = 3.0  # even and odd sides: centres on whole and half voxels
    assert centrosymmetry(ellipsoid) == pytest.approx(1.0, abs=1e-9)
    assert centrosymmetry(7.5 * ellipsoid) == pytest.approx(1.0, abs=1e-9)
    assert centrosymmetry(cube) == pytest.approx(1.0, abs=1e-9)


def test_a_tetrahedron_overlaps_its_inversion_by_half_its_volume():
    # T and -T about the centroid meet in an octahedron of half the tetrahedron's volume
    tet = tetrahedron()
    value = centrosymmetry(tet)
    assert value == pytest.approx(0.5, abs=0.03)
    shifted = np.roll(tet, (5, -3, 2), axis=(0, 1, 2))
    assert centrosymmetry(shifted) == pytest.approx(value, abs=1e-9)
    # the modulus of a complex object is scored, and the twin scores the same
    obj = tet * np.exp(1j * 0.3 * np.indices(tet.shape)[0])
    assert centrosymmetry(obj) == pytest.approx(value, abs=1e-9)
    assert centrosymmetry(twin_of(obj)) == pytest.approx(value, abs=1e-6)


def test_the_average_of_a_tetrahedron_and_its_twin_is_centrosymmetric():
    tet = tetrahedron()
    hedge = 0.5 * (tet + np.abs(twin_of(tet)))
    assert centrosymmetry(hedge) > 0.99 > centrosymmetry(tet) + 0.4


def test_a_triangle_in_2d_is_far_from_centrosymmetric_and_a_square_is_not():
    y, x = np.indices((64, 64)).astype(float)
    inside = (y >= 20) & (y <= 44) & (y - 20 <= 2 * (x - 16)) & (y - 20 <= 2 * (44 - x))
    triangle = inside.astype(float)
    square = ((abs(y - 30) <= 9) & (abs(x - 33) <= 9)).astype(float)
    assert centrosymmetry(triangle) < 0.8
    assert centrosymmetry(square) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.ones(16), "2D or 3D"),
        (np.zeros((8, 8)), "non-zero"),
        (np.full((8, 8), np.nan), "finite"),
    ],
)
def test_arrays_it_cannot_score_are_refused_with_a_reason(bad, message):
    with pytest.raises(InvalidDataError, match=message):
        centrosymmetry(bad)
