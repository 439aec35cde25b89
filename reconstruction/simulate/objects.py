"""Random complex objects: superellipsoids with smooth random phase, strained faceted crystals.

``draw_object(recipe, rng, family=..., view=...)`` returns a centred complex object (amplitude
max 1, phase in rad, exactly 0 outside the particle) and the drawn parameters (JSON-safe).

Displacement model of the faceted crystals (phase = Q . u(r), wrapped to (-pi, pi])
---------------------------------------------------------------------------------------
``r`` is the position from the crystal's centroid, in voxels of size ``v``; ``Q`` is the Bragg
vector of a {111} reflection (``|Q| = 2 pi / d``, ``d`` = ``crystal_d_spacing_m``, Au(111) by
default), oriented with the crystal. The voxel size is chosen per crystal so that a strain of
``crystal_strain_max`` (1 %) across the crystal's largest extent ``E`` gives
``crystal_phase_at_max_strain`` rad (3 rad): ``(2 pi / d) * strain_max * E * v = phase_max``,
i.e. ``k = 2 pi v / d`` rad per voxel of displacement. ``u`` (voxels) is the sum of

1. homogeneous strain ``u = eps . r`` with a random symmetric tensor ``eps`` (compression,
   tension and shear) whose largest |eigenvalue| is drawn in [0, strain_max];
2. surface relaxation ``u = alpha r |r| / R`` (R = E / 2; strain grows linearly from the
   centre to about 2 alpha at the surface), ``alpha`` in [-strain_max/2, strain_max/2];
3. a smooth random field: the component of u along Q is a Gaussian-correlated field of
   correlation length L (``phase_correlation`` times E) and amplitude ``eta L``, ``eta`` in
   [0, strain_max], so its strain is of order eta;
4. optional point defects (probability ``crystal_defect_probability``): ``u = A r_hat / r^2``
   around a point inside the crystal, capped at the core radius 1.5 voxels, ``A`` such that
   Q . u reaches ``crystal_defect_phase`` rad at the core (random sign);
5. optional dislocation-like vortices (probability ``crystal_dislocation_probability``): a line
   through a point inside the crystal, random direction t; the displacement of a dislocation
   with Burgers vector b winds by b around the line, so the phase winds by Q . b = +-2 pi:
   ``phase += m * atan2(w . e2, w . e1)`` with ``w`` the offset from the line and m = +-1.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from reconstruction.simulate.fields import correlated_field, wrap_phase
from reconstruction.simulate.geometry import (
    Body,
    Polyhedron,
    Superellipsoid,
    boundary_points,
    circle_directions,
    lab_coordinates,
    object_box,
    random_rotation,
    soft_indicator,
    sphere_directions,
    to_body,
)
from reconstruction.simulate.recipe import Recipe

_SPHERE = sphere_directions(4000)
_SPHERE_COARSE = sphere_directions(800)
_CIRCLE = circle_directions(720)
_CORE_RADIUS = 1.5


def family_normals(family: str) -> np.ndarray:
    """Return the unit normals ``(m, 3)`` of the planes of an fcc family, e.g. "111" -> 8 normals."""
    hkl = [int(c) for c in family]
    seen = set()
    for perm in itertools.permutations(hkl):
        for signs in itertools.product((1, -1), repeat=3):
            seen.add(tuple(s * v for s, v in zip(signs, perm, strict=True)))
    normals = np.array(sorted(seen), dtype=float)
    return normals / np.linalg.norm(normals, axis=1, keepdims=True)


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1])) if bounds[1] > bounds[0] else float(bounds[0])


def draw_superellipsoid(recipe: Recipe, rng: np.random.Generator) -> tuple[Superellipsoid, dict[str, Any]]:
    """Draw bounds (largest 1) and roundness exponents of a superellipsoid."""
    radii = np.array([_uniform(rng, recipe.superellipsoid_aspect) for _ in range(3)])
    radii = radii / radii.max()
    body = Superellipsoid(
        float(radii[0]),
        float(radii[1]),
        float(radii[2]),
        _uniform(rng, recipe.superellipsoid_e),
        _uniform(rng, recipe.superellipsoid_n),
    )
    return body, {"a": body.a, "b": body.b, "c": body.c, "e": body.e, "n": body.n}


def _bounded(normals: np.ndarray) -> bool:
    return bool(((_SPHERE_COARSE @ normals.T).max(axis=1) > 1e-6).all())


def draw_crystal(recipe: Recipe, rng: np.random.Generator) -> tuple[Polyhedron, dict[str, Any]]:
    """Draw a convex polyhedron cut by 4-20 fcc planes at random distances, centred on its centroid.

    A closed base set (a {111} tetrahedron or octahedron, a {100} cube, a {110} rhombic
    dodecahedron) at distances 0.85-1.15 is truncated by further planes of the allowed families,
    each at ``crystal_cut`` times the current support distance so that it really cuts a facet.
    """
    k = int(rng.integers(recipe.crystal_planes[0], recipe.crystal_planes[1] + 1))
    families = list(recipe.crystal_families)
    pool = {f: family_normals(f) for f in families}
    bases: list[tuple[str, np.ndarray]] = []
    for f in families:
        normals = pool[f]
        if f == "111":
            tetra = normals[np.prod(np.sign(normals), axis=1) > 0]
            bases.append(("111-tetrahedron", tetra))
        if len(normals) <= k:
            bases.append((f, normals))
    if bases:
        base_name, base = bases[int(rng.integers(len(bases)))]
    else:
        everything = np.concatenate(list(pool.values()))
        base_name, base = "random", everything[:0]
        while len(base) < 4 or not _bounded(base):
            base = everything[rng.choice(len(everything), size=min(k, len(everything)), replace=False)]
    normals = [n for n in base]
    distances = [float(rng.uniform(0.85, 1.15)) for _ in normals]
    candidates = np.concatenate(list(pool.values()))
    rng.shuffle(candidates)
    for nrm in candidates:
        if len(normals) >= k:
            break
        if any(np.dot(nrm, m) > 0.9999 for m in normals):
            continue
        poly = Polyhedron(np.array(normals), np.array(distances))
        support = float((boundary_points(poly, np.eye(3), _SPHERE_COARSE) @ nrm).max())
        normals.append(nrm)
        distances.append(_uniform(rng, recipe.crystal_cut) * support)
    poly = Polyhedron(np.array(normals), np.array(distances))
    poly = poly.recentred(poly.centroid())
    return poly, {
        "base": base_name,
        "normals": poly.normals.tolist(),
        "distances": poly.distances.tolist(),
    }


def _extent_setup(view: str) -> tuple[np.ndarray, tuple[int, ...]]:
    """Lab directions and array axes along which the oversampling is measured for a view."""
    if view == "volume":
        return _SPHERE, (0, 1, 2)
    if view == "projection":
        return _SPHERE, (1, 2)
    return _CIRCLE, (1, 2)


def place(
    body: Body, recipe: Recipe, rng: np.random.Generator, *, view: str, tries: int = 8
) -> tuple[np.ndarray, float, np.ndarray, bool]:
    """Draw a rotation and a scale (voxels per body unit) so that N / extent lies in range per axis.

    Returns (rotation (3, 3), scale, oversampling per measured axis, fits). When no rotation of
    this body fits the range (too elongated for it), ``fits`` is False and the most isotropic
    rotation tried is returned, scaled half-way between the two violated bounds.
    """
    directions, axes = _extent_setup(view)
    lo, hi = recipe.oversampling
    n = recipe.shape
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for _ in range(tries):
        rotation = random_rotation(rng)
        pts = boundary_points(body, rotation, directions)
        extents = np.array([pts[:, k].max() - pts[:, k].min() for k in axes])
        s_min, s_max = n / (hi * extents.min()), n / (lo * extents.max())
        if s_min <= s_max * (1 + 1e-9):
            scale = float(math.exp(rng.uniform(math.log(s_min), math.log(max(s_max, s_min)))))
            return rotation, scale, n / (scale * extents), True
        ratio = float(extents.min() / extents.max())
        if best is None or ratio > best[0]:
            best = (ratio, rotation, extents)
    _, rotation, extents = best
    scale = math.sqrt(n / (hi * extents.min()) * n / (lo * extents.max()))
    return rotation, scale, n / (scale * extents), False


def draw_object(
    recipe: Recipe, rng: np.random.Generator, *, family: str, view: str = "volume"
) -> tuple[np.ndarray, dict[str, Any]]:
    """Draw one centred complex object of ``family`` ("superellipsoid" | "crystal").

    ``view`` is "volume" (an ``(N, N, N)`` object), "slice" (the ``(N, N)`` central slice of a
    3D object) or "projection" (its ``(N, N)`` projection along axis 0). Returns
    (obj complex64 with max amplitude 1 and phase exactly 0 where the amplitude is 0, params).
    """
    draw = draw_superellipsoid if family == "superellipsoid" else draw_crystal
    for _ in range(25):  # bodies too elongated for the oversampling range are drawn again
        body, body_params = draw(recipe, rng)
        rotation, scale, oversampling, fits = place(body, recipe, rng, view=view)
        if fits:
            break
    sigma = _uniform(rng, recipe.edge_sigma)
    n = recipe.shape
    dims = 2 if view == "slice" else 3
    directions, _ = _extent_setup(view)
    box = object_box(body, n, rotation=rotation, scale=scale, edge_sigma=sigma, dims=dims, directions=directions)
    lab = lab_coordinates(box, n // 2, dims)
    amp = soft_indicator(scale * body.distance(to_body(lab, rotation, scale)), sigma)
    extent_vox = float(n / oversampling.min())
    if family == "superellipsoid":
        phase, phase_params = superellipsoid_phase(amp, recipe, rng, extent_vox=extent_vox)
    else:
        phase, phase_params = crystal_phase(amp, lab, body, rotation, scale, recipe, rng, extent_vox=extent_vox)
    phase[amp == 0] = 0.0
    sub = (amp * np.exp(1j * phase)).astype(np.complex64)
    obj = np.zeros((n,) * dims, np.complex64)
    obj[box] = sub
    if view == "projection":
        obj = obj.sum(axis=0)
        obj[np.abs(obj) < 1e-3 * np.abs(obj).max()] = 0
    obj /= np.abs(obj).max()
    params = {
        "family": family,
        "view": view,
        "rotation": rotation.tolist(),
        "scale_vox": scale,
        "oversampling": oversampling.tolist(),
        "oversampling_fits": fits,
        "edge_sigma_vox": sigma,
        **body_params,
        **phase_params,
    }
    return obj, params


def _normalised_inside(field: np.ndarray, inside: np.ndarray) -> np.ndarray:
    values = field[inside] if inside.any() else field.ravel()
    field = field - values.mean()
    peak = np.abs(field[inside]).max() if inside.any() else np.abs(field).max()
    return field / peak if peak > 0 else field


def superellipsoid_phase(
    amp: np.ndarray, recipe: Recipe, rng: np.random.Generator, *, extent_vox: float
) -> tuple[np.ndarray, dict[str, Any]]:
    """Return a Gaussian-correlated random phase (rad, float32) scaled to +-A inside the particle.

    Correlation lengths per axis are ``phase_correlation`` times the object extent (voxels); the
    field is centred on its mean inside, scaled so max |phase| inside = A (A drawn in
    ``phase_range``) and clipped to [-A, A].
    """
    lengths = tuple(_uniform(rng, recipe.phase_correlation) * extent_vox for _ in range(amp.ndim))
    half_range = min(_uniform(rng, recipe.phase_range), math.pi)
    field = _normalised_inside(correlated_field(amp.shape, lengths, rng), amp >= 0.5)
    phase = np.clip(half_range * field, -half_range, half_range).astype(np.float32)
    return phase, {"correlation_lengths_vox": list(lengths), "phase_half_range": half_range}


def _random_inside(amp: np.ndarray, lab: tuple[np.ndarray, ...], rng: np.random.Generator) -> np.ndarray:
    """A random lab position (voxels) of a voxel well inside the particle."""
    inside = np.argwhere(amp >= 0.9)
    if len(inside) == 0:
        inside = np.argwhere(amp > 0)
    pick = inside[int(rng.integers(len(inside)))]
    full = np.broadcast_arrays(*lab)
    if amp.ndim == 3:
        return np.array([full[k][tuple(pick)] for k in range(3)], dtype=float)
    return np.array([0.0, full[1][tuple(pick)], full[2][tuple(pick)]])


def crystal_phase(
    amp: np.ndarray,
    lab: tuple[np.ndarray, np.ndarray, np.ndarray],
    body: Polyhedron,
    rotation: np.ndarray,
    scale: float,
    recipe: Recipe,
    rng: np.random.Generator,
    *,
    extent_vox: float,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Return the wrapped phase Q . u(r) (rad, float32) of a strained crystal (model: module doc)."""
    strain_max = recipe.crystal_strain_max
    k = recipe.crystal_phase_at_max_strain / (strain_max * extent_vox) if strain_max > 0 else 0.0
    voxel_size_m = k * recipe.crystal_d_spacing_m / (2 * math.pi)
    q_body = family_normals("111")[int(rng.integers(8))]
    q = rotation @ q_body
    z, y, x = lab
    q_dot_r = q[0] * z + q[1] * y + q[2] * x
    # 1. homogeneous strain: Q . eps r = (eps Q) . r
    g = rng.standard_normal((3, 3))
    eps = (g + g.T) / 2
    eps *= rng.uniform(0, strain_max) / max(np.abs(np.linalg.eigvalsh(eps)).max(), 1e-12)
    eq = eps @ q
    phase = k * (eq[0] * z + eq[1] * y + eq[2] * x)
    # 2. surface relaxation u = alpha r |r| / R
    alpha = rng.uniform(-strain_max / 2, strain_max / 2)
    radius = np.sqrt(z * z + y * y + x * x)
    phase = phase + k * alpha * q_dot_r * radius / (extent_vox / 2)
    # 3. smooth random displacement along Q
    length = _uniform(rng, recipe.phase_correlation) * extent_vox
    eta = rng.uniform(0, strain_max)
    field = _normalised_inside(correlated_field(amp.shape, (length,) * amp.ndim, rng), amp >= 0.5)
    phase = phase + k * eta * length * field
    params: dict[str, Any] = {
        "q_direction": q.tolist(),
        "q_body_111": q_body.tolist(),
        "d_spacing_m": recipe.crystal_d_spacing_m,
        "voxel_size_m": voxel_size_m,
        "strain_tensor": eps.tolist(),
        "surface_relaxation": alpha,
        "random_strain": eta,
        "random_length_vox": length,
        "defects": [],
        "dislocations": [],
    }
    # 4. point defects u = A r_hat / r^2, capped at the core radius
    if rng.random() < recipe.crystal_defect_probability:
        for _ in range(int(rng.integers(recipe.crystal_defects[0], recipe.crystal_defects[1] + 1))):
            centre = _random_inside(amp, lab, rng)
            core_phase = _uniform(rng, recipe.crystal_defect_phase) * rng.choice((-1.0, 1.0))
            dz, dy, dx = z - centre[0], y - centre[1], x - centre[2]
            r2 = np.maximum(dz * dz + dy * dy + dx * dx, _CORE_RADIUS**2)
            q_dot_rhat = (q[0] * dz + q[1] * dy + q[2] * dx) / np.sqrt(r2)
            phase = phase + core_phase * _CORE_RADIUS**2 * q_dot_rhat / r2
            params["defects"].append({"position_vox": centre.tolist(), "core_phase": core_phase})
    # 5. dislocation-like phase vortex around a line
    if rng.random() < recipe.crystal_dislocation_probability:
        centre = _random_inside(amp, lab, rng)
        t = rng.standard_normal(3)
        t /= np.linalg.norm(t)
        e1 = np.cross(t, [1.0, 0.0, 0.0] if abs(t[0]) < 0.9 else [0.0, 1.0, 0.0])
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(t, e1)
        m = float(rng.choice((-1.0, 1.0)))
        dz, dy, dx = z - centre[0], y - centre[1], x - centre[2]
        phase = phase + m * np.arctan2(e2[0] * dz + e2[1] * dy + e2[2] * dx, e1[0] * dz + e1[1] * dy + e1[2] * dx)
        params["dislocations"].append({"position_vox": centre.tolist(), "line": t.tolist(), "winding": m})
    phase = np.broadcast_to(phase, amp.shape)
    return wrap_phase(phase), params
