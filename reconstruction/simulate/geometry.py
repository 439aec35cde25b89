"""Convex bodies (superellipsoids, polyhedra) evaluated on rotated voxel coordinates.

A body is described in its own frame at unit scale by a 1-homogeneous gauge ``G(p)``
(``G <= 1`` inside, ``G(t p) = t G(p)``), so its radius along a unit direction is ``1 / G``,
and by an approximate signed distance to its surface (positive inside, in body units). A body
is placed in a box by a rotation ``R`` and a scale ``s`` (voxels per body unit): the voxel at
lab offset ``x`` from the box centre ``N // 2`` maps to ``p = R^T x / s``. Volumes are never
resampled: the gauge is evaluated on rotated coordinates directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

GOLDEN_ANGLE = math.pi * (3.0 - math.sqrt(5.0))


def sphere_directions(n: int = 4000) -> np.ndarray:
    """Return ``(n, 3)`` quasi-uniform unit vectors on the sphere (Fibonacci lattice)."""
    i = np.arange(n) + 0.5
    z = 1.0 - 2.0 * i / n
    r = np.sqrt(1.0 - z * z)
    phi = GOLDEN_ANGLE * i
    return np.stack([z, r * np.cos(phi), r * np.sin(phi)], axis=1)


def circle_directions(n: int = 720) -> np.ndarray:
    """Return ``(n, 3)`` unit vectors in the plane of array axes 1 and 2 (axis-0 component 0)."""
    t = 2.0 * math.pi * (np.arange(n) + 0.5) / n
    return np.stack([np.zeros(n), np.cos(t), np.sin(t)], axis=1)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Return a ``(3, 3)`` rotation matrix drawn uniformly (Haar) from a random unit quaternion."""
    w, x, y, z = rng.standard_normal(4)
    norm = math.sqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w / norm, x / norm, y / norm, z / norm
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


@dataclass(frozen=True)
class Superellipsoid:
    """``(|p0/a|^(2/e) + |p1/b|^(2/e))^(e/n) + |p2/c|^(2/n) <= 1``; e = n = 1 is an ellipsoid."""

    a: float
    b: float
    c: float
    e: float
    n: float

    def implicit(self, p: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
        """Return the implicit function F (F <= 1 inside; F(t p) = t^(2/n) F(p))."""
        e, n = self.e, self.n
        xy = np.abs(p[0] / self.a) ** (2.0 / e) + np.abs(p[1] / self.b) ** (2.0 / e)
        return xy ** (e / n) + np.abs(p[2] / self.c) ** (2.0 / n)

    def gauge(self, p: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
        """Return the 1-homogeneous gauge ``F ** (n / 2)`` (<= 1 inside)."""
        return self.implicit(p) ** (self.n / 2.0)

    def distance(self, p: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
        """Return the radial distance to the surface (body units, positive inside)."""
        g = self.gauge(p)
        r = np.sqrt(p[0] ** 2 + p[1] ** 2 + p[2] ** 2)
        # r / g is the surface radius along the ray; at the very centre (g = 0) it is far inside
        return np.where(g > 1e-9, r * (1.0 - g) / np.maximum(g, 1e-9), np.float32(1e6))

    def radius(self, directions: np.ndarray) -> np.ndarray:
        """Return the radius (body units) along ``(m, 3)`` unit directions."""
        return 1.0 / self.gauge((directions[:, 0], directions[:, 1], directions[:, 2]))


@dataclass(frozen=True)
class Polyhedron:
    """The convex body ``normals @ p <= distances`` (unit normals, ``(k, 3)``; ``(k,)`` > 0)."""

    normals: np.ndarray
    distances: np.ndarray

    def distance(self, p: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
        """Return ``min_i (d_i - n_i . p)``: distance to the nearest face plane inside, < 0 outside."""
        out = None
        for nrm, d in zip(self.normals, self.distances, strict=True):
            value = d - (nrm[0] * p[0] + nrm[1] * p[1] + nrm[2] * p[2])
            out = value if out is None else np.minimum(out, value)
        return out

    def gauge(self, p: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
        """Return ``max_i n_i . p / d_i`` (<= 1 inside)."""
        stacked = np.stack([n[0] * p[0] + n[1] * p[1] + n[2] * p[2] for n in self.normals])
        return (stacked / self.distances.reshape((-1,) + (1,) * (stacked.ndim - 1))).max(axis=0)

    def radius(self, directions: np.ndarray) -> np.ndarray:
        """Return the radius along ``(m, 3)`` unit directions (inf where the body is unbounded)."""
        g = (directions @ self.normals.T / self.distances).max(axis=1)
        return np.where(g > 1e-9, 1.0 / np.maximum(g, 1e-9), np.inf)

    def centroid(self, directions: np.ndarray | None = None) -> np.ndarray:
        """Return the volume centroid ``(3,)`` from the radial function (quasi-uniform directions)."""
        dirs = _CENTROID_DIRECTIONS if directions is None else directions
        r = self.radius(dirs)
        return (r[:, None] ** 4 / 4.0 * dirs).sum(axis=0) / (r**3 / 3.0).sum()

    def recentred(self, origin: np.ndarray) -> Polyhedron:
        """Return the same polyhedron in coordinates whose origin is ``origin``."""
        return Polyhedron(self.normals, self.distances - self.normals @ origin)


Body = Superellipsoid | Polyhedron
_CENTROID_DIRECTIONS = sphere_directions(8000)


def boundary_points(body: Body, rotation: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Return ``(m, 3)`` lab-frame surface points (unit scale) along lab ``directions``."""
    r = body.radius(directions @ rotation)  # body-frame directions: R^T d, row-wise
    return r[:, None] * directions


def lab_coordinates(
    box: tuple[slice, ...], centre: int, dims: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return broadcastable lab offsets (voxels from ``centre``) for the three axes of a sub-box.

    For ``dims`` = 3 the sub-box is ``box`` of a volume; for ``dims`` = 2 it is ``box`` of the
    plane of array axes 1 and 2 through the centre (axis-0 offset 0).
    """
    if dims == 3:
        z = np.arange(box[0].start, box[0].stop, dtype=np.float32)[:, None, None] - centre
        y = np.arange(box[1].start, box[1].stop, dtype=np.float32)[None, :, None] - centre
        x = np.arange(box[2].start, box[2].stop, dtype=np.float32)[None, None, :] - centre
        return z, y, x
    y = np.arange(box[0].start, box[0].stop, dtype=np.float32)[:, None] - centre
    x = np.arange(box[1].start, box[1].stop, dtype=np.float32)[None, :] - centre
    return np.zeros((1, 1), np.float32), y, x


def to_body(
    lab: tuple[np.ndarray, np.ndarray, np.ndarray], rotation: np.ndarray, scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map lab offsets (voxels) to body coordinates ``p = R^T x / scale`` (full sub-box arrays)."""
    rt = (rotation / scale).astype(np.float32)
    return tuple(rt[0, k] * lab[0] + rt[1, k] * lab[1] + rt[2, k] * lab[2] for k in range(3))


def soft_indicator(distance_vox: np.ndarray, sigma: float, *, floor: float = 1e-3) -> np.ndarray:
    """Return the indicator smoothed by a Gaussian of ``sigma`` voxels (hard when 0), float32.

    ``distance_vox`` is the signed distance to the surface in voxels (positive inside); values
    below ``floor`` are set to exactly 0 so that "outside the particle" is well defined.
    """
    if sigma <= 0:
        return (distance_vox >= 0).astype(np.float32)
    amp = ndtr(distance_vox / np.float32(sigma)).astype(np.float32)
    amp[amp < floor] = 0.0
    return amp


def rasterise(
    body: Body,
    shape: int,
    *,
    rotation: np.ndarray,
    scale: float,
    edge_sigma: float = 0.0,
    dims: int = 3,
) -> np.ndarray:
    """Return the amplitude ``(N,)*dims`` float32 of ``body`` rotated, scaled and centred at N // 2.

    For ``dims`` = 2 this is the central slice through the plane of array axes 1 and 2.
    """
    directions = sphere_directions() if dims == 3 else circle_directions()
    box = object_box(
        body,
        shape,
        rotation=rotation,
        scale=scale,
        edge_sigma=edge_sigma,
        dims=dims,
        directions=directions,
    )
    lab = lab_coordinates(box, shape // 2, dims)
    p = to_body(lab, rotation, scale)
    out = np.zeros((shape,) * dims, np.float32)
    out[box] = soft_indicator(scale * body.distance(p), edge_sigma)
    return out


def object_box(
    body: Body,
    shape: int,
    *,
    rotation: np.ndarray,
    scale: float,
    edge_sigma: float,
    dims: int,
    directions: np.ndarray,
    origin: np.ndarray | None = None,
) -> tuple[slice, ...]:
    """Return the sub-box (slices) holding the placed body plus a smoothing margin.

    ``origin`` is the lab position (voxels from N // 2, (3,)) of the body's origin (default 0).
    """
    pts = scale * boundary_points(body, rotation, directions)
    if origin is not None:
        pts = pts + origin
    margin = math.ceil(4.0 * edge_sigma) + 2
    axes = range(3) if dims == 3 else range(1, 3)
    centre = shape // 2
    box = []
    for k in axes:
        lo = math.floor(pts[:, k].min()) - margin + centre
        hi = math.ceil(pts[:, k].max()) + margin + centre + 1
        box.append(slice(max(lo, 0), min(hi, shape)))
    return tuple(box)
