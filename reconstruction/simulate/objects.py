"""Random complex objects: superellipsoids with smooth random phase, strained faceted crystals.

``draw_object(recipe, rng, family=..., view=...)`` returns a centred complex object (amplitude
max 1, phase in rad, exactly 0 outside the particle) and the drawn parameters (JSON-safe).

The displacement model of the faceted crystals (phase = Q . u(r), wrapped to (-pi, pi]:
homogeneous strain, surface relaxation, a smooth random field, point defects, dislocation
vortices) is documented in ``reconstruction.simulate.displacement``; here its parameters are drawn. The voxel
size is chosen per crystal so that ``crystal_strain_max`` (1 %) across the crystal's largest
extent gives ``crystal_phase_at_max_strain`` (3 rad) for a {111} reflection of spacing
``crystal_d_spacing_m`` (Au, 2.355 A).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from reconstruction.simulate.displacement import (
    Dislocation,
    Displacement,
    PointDefect,
    displacement_phase,
    phase_per_voxel,
    voxel_size_m,
)
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


def draw_superellipsoid(
    recipe: Recipe, rng: np.random.Generator
) -> tuple[Superellipsoid, dict[str, Any]]:
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


def draw_crystal(recipe: Recipe, rng: np.random.Generator) -> tuple[Polyhedron, dict[str, Any]]:
    """Draw a convex polyhedron cut by 4-20 fcc planes at random distances, centred on its centroid.

    A closed base set (a {111} tetrahedron or octahedron, a {100} cube, a {110} rhombic
    dodecahedron) at distances 0.85-1.15 is truncated by further planes of the allowed families,
    each at ``crystal_cut`` times the current support distance so that it really cuts a facet.
    """
    k = int(rng.integers(recipe.crystal_planes[0], recipe.crystal_planes[1] + 1))
    families = list(recipe.crystal_families)
    pool = {f: family_normals(f) for f in families}
    # closed base sets (each full family is centrosymmetric, hence bounded)
    bases: list[tuple[str, np.ndarray]] = [(f, pool[f]) for f in families]
    if "111" in pool:
        bases.append(("111-tetrahedron", pool["111"][np.prod(np.sign(pool["111"]), axis=1) > 0]))
    fitting = [b for b in bases if len(b[1]) <= k]
    if fitting:
        base_name, base = fitting[int(rng.integers(len(fitting)))]
    else:  # e.g. only {311} (24 planes) allowed: use the smallest closed set, beyond k
        base_name, base = min(bases, key=lambda b: len(b[1]))
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


def slice_centroid(body: Body, rotation: np.ndarray) -> np.ndarray:
    """Return the lab-frame centroid (3,), unit scale, of the body's slice through the plane x0 = 0."""
    r = body.radius(_CIRCLE @ rotation)
    return (r[:, None] ** 3 / 3.0 * _CIRCLE).sum(axis=0) / (r**2 / 2.0).sum()


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
    # a slice through the body's centroid is not centred itself: move its own centroid to N // 2
    origin = -scale * slice_centroid(body, rotation) if view == "slice" else np.zeros(3)
    box = object_box(
        body,
        n,
        rotation=rotation,
        scale=scale,
        edge_sigma=sigma,
        dims=dims,
        directions=directions,
        origin=origin,
    )
    lab = tuple(
        axis - np.float32(o)
        for axis, o in zip(lab_coordinates(box, n // 2, dims), origin, strict=True)
    )
    amp = soft_indicator(scale * body.distance(to_body(lab, rotation, scale)), sigma)
    extent_vox = float(n / oversampling.min())
    if family == "superellipsoid":
        phase, phase_params = superellipsoid_phase(amp, recipe, rng, extent_vox=extent_vox)
    else:
        phase, phase_params = crystal_phase(
            amp, lab, body, rotation, scale, recipe, rng, extent_vox=extent_vox
        )
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
        "origin_vox": origin.tolist(),
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


def _random_inside(
    amp: np.ndarray, lab: tuple[np.ndarray, ...], rng: np.random.Generator
) -> np.ndarray:
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
    """Draw a displacement field and return its wrapped phase Q . u (rad, float32) and parameters.

    The model of u is documented in ``reconstruction.simulate.displacement``.
    """
    strain_max = recipe.crystal_strain_max
    k = phase_per_voxel(
        strain_max=strain_max,
        phase_at_max_strain=recipe.crystal_phase_at_max_strain,
        extent_vox=extent_vox,
    )
    q_body = family_normals("111")[int(rng.integers(8))]
    q = rotation @ q_body
    g = rng.standard_normal((3, 3))
    eps = (g + g.T) / 2
    eps *= rng.uniform(0, strain_max) / max(np.abs(np.linalg.eigvalsh(eps)).max(), 1e-12)
    alpha = rng.uniform(-strain_max / 2, strain_max / 2)
    length = _uniform(rng, recipe.phase_correlation) * extent_vox
    eta = rng.uniform(0, strain_max)
    field = _normalised_inside(correlated_field(amp.shape, (length,) * amp.ndim, rng), amp >= 0.5)
    defects = []
    if rng.random() < recipe.crystal_defect_probability:
        lo, hi = recipe.crystal_defects
        for _ in range(int(rng.integers(lo, hi + 1))):
            centre = _random_inside(amp, lab, rng)
            core = _uniform(rng, recipe.crystal_defect_phase) * float(rng.choice((-1.0, 1.0)))
            defects.append(PointDefect(tuple(centre.tolist()), core))
    dislocations = []
    if rng.random() < recipe.crystal_dislocation_probability:
        centre = _random_inside(amp, lab, rng)
        t = rng.standard_normal(3)
        t /= np.linalg.norm(t)
        winding = float(rng.choice((-1.0, 1.0)))
        dislocations.append(Dislocation(tuple(centre.tolist()), tuple(t.tolist()), winding))
    model = Displacement(
        k_rad_per_vox=k,
        q=tuple(q.tolist()),
        strain=tuple(tuple(row) for row in eps.tolist()),
        relaxation=alpha,
        radius_vox=extent_vox / 2,
        random_amplitude_vox=eta * length,
        defects=tuple(defects),
        dislocations=tuple(dislocations),
    )
    phase = np.broadcast_to(displacement_phase(lab, model, random_field=field), amp.shape)
    params: dict[str, Any] = {
        "q_direction": q.tolist(),
        "q_body_111": q_body.tolist(),
        "d_spacing_m": recipe.crystal_d_spacing_m,
        "voxel_size_m": voxel_size_m(k, recipe.crystal_d_spacing_m),
        "phase_per_voxel_displacement": k,
        "strain_tensor": eps.tolist(),
        "surface_relaxation": alpha,
        "random_strain": eta,
        "random_length_vox": length,
        "defects": [
            {"position_vox": list(d.position_vox), "core_phase": d.core_phase} for d in defects
        ],
        "dislocations": [
            {"position_vox": list(d.position_vox), "line": list(d.line), "winding": d.winding}
            for d in dislocations
        ],
    }
    return wrap_phase(phase), params
