"""Plotly figure dicts (JSON-safe) built from numpy arrays and result records.

Everything here is a pure function of arrays: no Django, no files. Arrays travel as plotly.js
typed-array specs and volumes the page slices itself as 8-bit codes (``webapp.viewer.encoding``),
which keeps a 64³ result page under 2 MB of figure data.

Conventions: arrays are indexed ``[z, y, x]`` (axis 0 first) and centred as in
``reconstruction.fourier``. A slice "along axis 0 at index i" is the image ``a[i, :, :]``
shown with x horizontal; along axis 1 it is ``a[:, i, :]`` (x horizontal, z vertical);
along axis 2 it is ``a[:, :, i]`` (y horizontal, z vertical). The static JS slices the
quantised volumes the same way.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage
from skimage import measure

from reconstruction.errors import ConfigError, InvalidDataError
from reconstruction.fourier import blur_intensity, farfield
from reconstruction.phasing.schedule import parse_schedule
from webapp.viewer.encoding import MAX_SLICE_SIDE, bin_volume, encode_volume, typed_array

# Cyclic colour scale for phase: plotly's "Twilight" rotated by half a turn (matplotlib's
# "twilight_shifted"), so that phase 0 is light and ±π dark; first colour == last colour.
TWILIGHT = [
    "#471340", "#8e2c50", "#ba6657", "#ceac94", "#e2d9e2",
    "#9ebbc9", "#6785be", "#5e43a5", "#421257", "#471340",
]  # fmt: skip
PHASE_COLORSCALE = [[i / (len(TWILIGHT) - 1), c] for i, c in enumerate(TWILIGHT)]
PHASE_TICKS = {
    "tickvals": [-math.pi, -math.pi / 2, 0.0, math.pi / 2, math.pi],
    "ticktext": ["−π", "−π/2", "0", "π/2", "π"],
}
# Diverging scale for the displacement (ColorBrewer RdBu, blue negative, white 0, red positive).
DISPLACEMENT_COLORSCALE = [[0.0, "#2166ac"], [0.25, "#67a9cf"], [0.5, "#f7f7f7"], [0.75, "#ef8a62"], [1.0, "#b2182b"]]
DISPLACEMENT_RANGE_PERCENTILE = 99.0
AMPLITUDE_COLORSCALE = "Greys"
INTENSITY_COLORSCALE = "Viridis"
INTENSITY_LEVEL_COLOURS = ("#3b528b", "#fde725", "#5ec962")
AXIS_NAMES = ("z", "y", "x")
DEFAULT_THRESHOLD = 0.3
# Phase is drawn only where the amplitude reaches this fraction of its maximum (and inside the
# support): in a shrink-wrapped support's low-amplitude rim the phase is noise.
PHASE_SHOWN_ABOVE = 0.1
DEFAULT_MAX_VERTICES = 30_000
SEGMENT_COLOURS = {"ER": "rgba(31,119,180,0.08)", "HIO": "rgba(255,127,14,0.10)",
                   "RAAR": "rgba(44,160,44,0.10)"}  # fmt: skip


@dataclass(frozen=True)
class ColourField:
    """What colours the isosurface and the lower row of slices: the phase (rad, cyclic) or the
    displacement along the Bragg vector (pm, diverging, symmetric about 0)."""

    name: str  # "phase" or "displacement"
    title: str  # colour bar title, with the unit
    label: str  # short name: slice titles, hover
    unit: str
    lo: float
    hi: float
    cyclic: bool
    colorscale: Any
    ticks: dict[str, Any] = field(default_factory=dict)
    hover_format: str = ".2f"

    def hover(self, value: str) -> str:
        """Hover text of one value, ``value`` a plotly placeholder such as ``%{z}``."""
        return f"{self.label} {value[:-1]}:{self.hover_format}}} {self.unit}"

    def scale(self) -> dict[str, Any]:
        """The plotly colour-scale keys of a trace or colour axis."""
        return {"colorscale": self.colorscale, "cmin": self.lo, "cmax": self.hi}

    def colorbar(self, **place: Any) -> dict[str, Any]:
        """A plotly colour bar for this field."""
        return {"title": {"text": self.title}, **self.ticks, **place}


PHASE_FIELD = ColourField("phase", "phase (rad)", "phase", "rad", -math.pi, math.pi, True, PHASE_COLORSCALE, PHASE_TICKS)


def _diverging_colour(values: np.ndarray, field: ColourField) -> ColourField:
    """``field`` (a diverging template) with its scale symmetric about 0 up to the 99th
    percentile of |values| (NaN outside the crystal), so that a few noisy rim voxels do not wash
    out the crystal (larger values take the end colours); the template's range when all are 0."""
    finite = np.abs(values[np.isfinite(values)])
    top = float(np.percentile(finite, DISPLACEMENT_RANGE_PERCENTILE)) if finite.size else 0.0
    top = top if top > 0 else field.hi
    return dataclasses.replace(field, lo=-top, hi=top)


DISPLACEMENT_FIELD = ColourField("displacement", "u along G (pm)", "u", "pm", -1.0, 1.0, False,
                                 DISPLACEMENT_COLORSCALE, hover_format=".1f")  # fmt: skip
STRAIN_FIELD = ColourField("strain", "ε along G (%)", "ε", "%", -0.01, 0.01, False,
                           DISPLACEMENT_COLORSCALE, hover_format=".4f")  # fmt: skip


def displacement_colour(u_pm: np.ndarray) -> ColourField:
    """The colour field of a displacement map ``u_pm`` (pm, NaN outside the crystal)."""
    return _diverging_colour(u_pm, DISPLACEMENT_FIELD)


def strain_colour(strain_pct: np.ndarray) -> ColourField:
    """The colour field of a strain map (%, NaN outside the crystal)."""
    return _diverging_colour(strain_pct, STRAIN_FIELD)


# --------------------------------------------------------------------------- object helpers
def reference_phase(obj: np.ndarray, support: np.ndarray | None = None) -> np.ndarray:
    """Return the phase of ``obj`` (rad, in [-π, π]) with the amplitude-weighted mean over the
    support removed, so that the crystal's average phase sits at 0 on the cyclic colour scale.

    obj : (Z, Y, X) or (Y, X) complex; support : same shape bool (None = whole box).
    """
    region = obj if support is None or not support.any() else obj[support]
    offset = np.angle(np.sum(region)) if np.abs(np.sum(region)) > 0 else 0.0
    return np.angle(obj * np.exp(-1j * offset)).astype(np.float32)


def support_bbox(support: np.ndarray, *, margin: int = 2) -> tuple[slice, ...]:
    """Return the bounding box of ``support`` (bool, any ndim) grown by ``margin`` voxels."""
    if not support.any():
        return tuple(slice(0, n) for n in support.shape)
    box = []
    for axis, n in enumerate(support.shape):
        other = tuple(a for a in range(support.ndim) if a != axis)
        idx = np.flatnonzero(support.any(axis=other))
        box.append(slice(max(0, idx[0] - margin), min(n, idx[-1] + 1 + margin)))
    return tuple(box)


def take_slice(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    """Return the 2D image of ``volume`` (Z, Y, X) at ``index`` along ``axis`` (see module doc)."""
    index = int(np.clip(index, 0, volume.shape[axis] - 1))
    return np.take(volume, index, axis=axis)


# --------------------------------------------------------------------------- isosurface
def isosurface_mesh(
    amplitude: np.ndarray,
    phase: np.ndarray,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    max_vertices: int = DEFAULT_MAX_VERTICES,
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
    cyclic: bool = True,
) -> dict[str, Any]:
    """Compute the amplitude isosurface and the phase (or another field) at its vertices.

    Parameters
    ----------
    amplitude : (Z, Y, X) float, >= 0.
    phase : (Z, Y, X) float, rad (wrapped); with ``cyclic=False`` any field (e.g. a
        displacement in pm), NaN where unknown (filled from the nearest known voxel).
    threshold : iso-level as a fraction of max(amplitude), in (0, 1).
    max_vertices : vertex budget; marching cubes' ``step_size`` grows until it is met.
    origin : (z, y, x) offset in voxels added to the vertex positions.

    Returns
    -------
    dict with ``verts`` (V, 3) float32 in voxels (z, y, x), ``faces`` (F, 3) int,
    ``values`` (V,) float32: the phase in rad in [-π, π] (cos and sin interpolated separately,
    then atan2), or the field interpolated linearly; ``step_size`` and ``level`` (absolute
    amplitude).
    """
    if amplitude.ndim != 3 or phase.shape != amplitude.shape:
        raise InvalidDataError(f"expected two 3D arrays of one shape, got {amplitude.shape} and {phase.shape}")
    if not 0.0 < threshold < 1.0:
        raise ConfigError(f"isosurface threshold must be a fraction of the maximum in (0, 1), got {threshold}")
    peak = float(np.max(amplitude))
    if not np.isfinite(peak) or peak <= 0:
        raise InvalidDataError("the amplitude is zero everywhere: there is no surface to draw")
    level = threshold * peak
    padded = np.pad(np.asarray(amplitude, dtype=np.float32), 1)  # closes surfaces cut by the box
    step = 1
    while True:
        verts, faces, _, _ = measure.marching_cubes(padded, level=level, step_size=step, allow_degenerate=False)
        if len(verts) <= max_vertices or step >= max(amplitude.shape) // 2:
            break
        step += 1
    verts = verts - 1.0  # undo the padding
    coords = verts.T
    if cyclic:
        cos_v = ndimage.map_coordinates(np.cos(phase), coords, order=1, mode="nearest")
        sin_v = ndimage.map_coordinates(np.sin(phase), coords, order=1, mode="nearest")
        values = np.arctan2(sin_v, cos_v)
    else:
        values = ndimage.map_coordinates(_fill_from_nearest(phase), coords, order=1, mode="nearest")
    return {
        "verts": (verts + np.asarray(origin, dtype=np.float64)).astype(np.float32),
        "faces": faces,
        "values": values.astype(np.float32),
        "step_size": step,
        "level": level,
    }


def _fill_from_nearest(volume: np.ndarray) -> np.ndarray:
    """``volume`` with each NaN replaced by the value of the nearest finite voxel (0 if none)."""
    bad = ~np.isfinite(volume)
    if not bad.any() or bad.all():
        return np.nan_to_num(volume)
    nearest = ndimage.distance_transform_edt(bad, return_distances=False, return_indices=True)
    return volume[tuple(nearest)]


def isosurface_figure(
    amplitude: np.ndarray,
    phase: np.ndarray,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    max_vertices: int = DEFAULT_MAX_VERTICES,
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
    title: str = "",
    voxel_size_nm: tuple[float, float, float] | None = None,
    colour: ColourField = PHASE_FIELD,
) -> dict[str, Any]:
    """Return a plotly figure dict: a ``mesh3d`` amplitude isosurface coloured by phase.

    amplitude, phase : (Z, Y, X); threshold : fraction of max amplitude; the colour scale is
    cyclic over [-π, π] rad; voxel_size_nm : (z, y, x) voxel size, then positions are in nm,
    else in voxels; colour : another field to colour by (``phase`` then holds it, e.g. the
    displacement in pm). ``figure["meta"]`` carries threshold, step_size, n_vertices and unit.
    """
    mesh = isosurface_mesh(amplitude, phase, threshold=threshold, max_vertices=max_vertices, origin=origin,
                           cyclic=colour.cyclic)  # fmt: skip
    verts, faces = mesh["verts"], mesh["faces"]
    unit = "voxel" if voxel_size_nm is None else "nm"
    if voxel_size_nm is not None:
        verts = (verts * np.asarray(voxel_size_nm, dtype=np.float32)).astype(np.float32)
    index_dtype = "u2" if len(verts) < 65536 else "u4"
    trace = {
        "type": "mesh3d",
        "x": typed_array(verts[:, 2]),
        "y": typed_array(verts[:, 1]),
        "z": typed_array(verts[:, 0]),
        "i": typed_array(faces[:, 0], index_dtype),
        "j": typed_array(faces[:, 1], index_dtype),
        "k": typed_array(faces[:, 2], index_dtype),
        "intensity": typed_array(mesh["values"]),
        "intensitymode": "vertex",
        **colour.scale(),
        "colorbar": colour.colorbar(len=0.8),
        "flatshading": False,
        "lighting": {"ambient": 0.55, "diffuse": 0.7, "specular": 0.15, "roughness": 0.6},
        "hovertemplate": f"x %{{x:.1f}} {unit}<br>y %{{y:.1f}} {unit}<br>z %{{z:.1f}} {unit}<br>"
                         f"{colour.hover('%{intensity}')}<extra></extra>",
        "name": "amplitude isosurface",
    }
    scene_axis = {"showbackground": False, "gridcolor": "#ddd"}
    layout = {
        "title": {"text": title or f"isosurface at {threshold:.2f} of max amplitude"},  # the panel names the colour
        "scene": {
            "aspectmode": "data",
            "xaxis": {**scene_axis, "title": {"text": f"x ({unit})"}},
            "yaxis": {**scene_axis, "title": {"text": f"y ({unit})"}},
            "zaxis": {**scene_axis, "title": {"text": f"z ({unit})"}},
        },
        "margin": {"l": 0, "r": 0, "t": 40, "b": 0},
        "uirevision": "keep-camera",
    }
    meta = {"threshold": threshold, "step_size": mesh["step_size"], "n_vertices": len(verts),
            "n_faces": len(faces), "unit": unit}  # fmt: skip
    return {"data": [trace], "layout": layout, "meta": meta}


# --------------------------------------------------------------------------- slices
SLICE_AXES_3D = [("x", "y"), ("x", "z"), ("y", "z")]  # (horizontal, vertical) of slices along z, y, x


def _grid_layout(
    titles: list[list[str]], *, axes: list[tuple[str, str]], unit: str | None = "voxel", height: int,
    gap_x: float = 0.06,
) -> dict[str, Any]:
    """Layout of a rows × cols grid of image subplots with square pixels (axes named xN/yN).

    titles : one list of column titles per row; axes : (horizontal, vertical) names per column,
    titled "name (unit)", or as given when ``unit`` is None.
    """
    rows, cols = len(titles), len(titles[0])
    layout: dict[str, Any] = {"height": height, "margin": {"l": 40, "r": 10, "t": 30, "b": 35},
                              "annotations": [], "showlegend": False}  # fmt: skip
    gap_y = 80.0 / max(height - 65, 1)  # ~80 px between rows: axis title + next row's title
    width = (0.86 - (cols - 1) * gap_x) / cols
    h = (1.0 - (rows - 1) * gap_y) / rows
    for r in range(rows):
        for c in range(cols):
            n = r * cols + c + 1
            suffix = "" if n == 1 else str(n)
            x0 = c * (width + gap_x)
            y1 = 1.0 - r * (h + gap_y)
            horiz, vert = axes[c]
            layout[f"xaxis{suffix}"] = {"domain": [x0, x0 + width], "anchor": f"y{suffix}",
                                        "title": {"text": horiz if unit is None else f"{horiz} ({unit})", "standoff": 2},
                                        "constrain": "domain"}  # fmt: skip
            layout[f"yaxis{suffix}"] = {"domain": [y1 - h, y1], "anchor": f"x{suffix}",
                                        "title": {"text": vert if unit is None else f"{vert} ({unit})", "standoff": 2},
                                        "scaleanchor": f"x{suffix}", "constrain": "domain"}  # fmt: skip
            layout["annotations"].append({"text": titles[r][c], "xref": "paper", "yref": "paper",
                                          "x": x0 + width / 2, "y": y1, "yanchor": "bottom",
                                          "showarrow": False, "font": {"size": 12}})  # fmt: skip
    return layout


def _heatmap(
    image: np.ndarray, n: int, *, origin: tuple[int, int], step: tuple[float, float] = (1.0, 1.0), **style: Any
) -> dict[str, Any]:
    """One heatmap trace on subplot ``n`` (1-based): pixel (0, 0) at voxel ``origin`` (x0, y0),
    positions in units of ``step`` (dx, dy): 1 = voxels, else e.g. nm per voxel."""
    suffix = "" if n == 1 else str(n)
    dx, dy = float(step[0]), float(step[1])
    return {"type": "heatmap", "z": typed_array(image.astype(np.float32)), "x0": origin[0] * dx, "dx": dx,
            "y0": origin[1] * dy, "dy": dy, "xaxis": f"x{suffix}", "yaxis": f"y{suffix}", **style}  # fmt: skip


def _pin_ranges(layout: dict[str, Any], traces: list[dict[str, Any]]) -> None:
    """Fix each subplot's axis ranges to its image's extent, so that an all-NaN (blank) slice keeps
    its axes when the page re-slices."""
    for trace in traces:
        height, width = (int(n) for n in trace["z"]["shape"].split(","))
        xname, yname = trace["xaxis"].replace("x", "xaxis", 1), trace["yaxis"].replace("y", "yaxis", 1)
        dx, dy = trace["dx"], trace["dy"]
        layout[xname]["range"] = [trace["x0"] - 0.5 * dx, trace["x0"] + (width - 0.5) * dx]
        layout[yname]["range"] = [trace["y0"] - 0.5 * dy, trace["y0"] + (height - 0.5) * dy]


def _rows_downwards(layout: dict[str, Any]) -> None:
    """Show 2D images as detector images and EDF files are shown (matplotlib, ImageJ, PIL): row 0
    at the top, so a support or a logo reads the same here as in the file it came from."""
    for name, axis in layout.items():
        if name.startswith("yaxis") and "range" in axis:
            axis["range"] = sorted(axis["range"], reverse=True)


def _slice_origins(origin: tuple[int, int, int]) -> list[tuple[int, int]]:
    """(x0, y0) of the three slice images for a volume whose [0, 0, 0] sits at ``origin`` (z, y, x)."""
    z0, y0, x0 = origin
    return [(x0, y0), (x0, z0), (y0, z0)]


def _slice_steps(voxel_size_nm: tuple[float, ...] | None) -> list[tuple[float, float]]:
    """(dx, dy) of the three slice images (along z, y, x): voxel sizes in nm, or 1 (voxels)."""
    vz, vy, vx = voxel_size_nm if voxel_size_nm is not None else (1.0, 1.0, 1.0)
    return [(vx, vy), (vx, vz), (vy, vz)]


def object_slices_figure(
    amplitude: np.ndarray,
    phase: np.ndarray,
    support: np.ndarray | None,
    *,
    index: tuple[int, ...] = (),
    origin: tuple[int, ...] = (0, 0, 0),
    voxel_size_nm: tuple[float, ...] | None = None,
    colour: ColourField = PHASE_FIELD,
) -> dict[str, Any]:
    """Return amplitude and phase images: for 3D a 2 × 3 grid of slices along z, y, x
    (amplitude top, phase bottom); for 2D the two images side by side.

    amplitude : (Z, Y, X) or (Y, X) relative amplitude (max 1); phase : same shape, rad;
    support : bool (phase is NaN outside it, which plotly leaves blank); index : (iz, iy, ix)
    local indices (3D only); origin : voxel position of element [0, ...] in the full box;
    voxel_size_nm : per-axis voxel size, then the axes are in nm, else in voxels (pixels in 2D);
    colour : the field ``phase`` holds when it is not the phase (e.g. the displacement in pm).
    """
    unit = "nm" if voxel_size_nm is not None else ("pixel" if amplitude.ndim == 2 else "voxel")
    phase = np.where(support, phase, np.nan) if support is not None else phase
    amp_style = {"coloraxis": "coloraxis", "hovertemplate": "amplitude %{z:.3f}<extra></extra>"}
    phase_style = {"coloraxis": "coloraxis2", "hovertemplate": f"{colour.hover('%{z}')}<extra></extra>"}
    if amplitude.ndim == 2:
        oy, ox = origin if len(origin) == 2 else (0, 0)
        step = (1.0, 1.0) if voxel_size_nm is None else (voxel_size_nm[-1], voxel_size_nm[-2])
        traces = [_heatmap(amplitude, 1, origin=(ox, oy), step=step, **amp_style),
                  _heatmap(phase, 2, origin=(ox, oy), step=step, **phase_style)]  # fmt: skip
        layout = _grid_layout([["amplitude", colour.name]], axes=[("x", "y")] * 2, unit=unit, height=460, gap_x=0.1)
        bars = ({"x": 0.9, "y": 0.76, "len": 0.46}, {"x": 0.9, "y": 0.24, "len": 0.46})
    else:
        origins, steps = _slice_origins(tuple(origin)), _slice_steps(voxel_size_nm)
        titles = [[f"amplitude, {AXIS_NAMES[a]} = {index[a] + origin[a]}" for a in range(3)],
                  [f"{colour.label}, {AXIS_NAMES[a]} = {index[a] + origin[a]}" for a in range(3)]]  # fmt: skip
        traces = [_heatmap(take_slice(amplitude, a, index[a]), a + 1, origin=origins[a], step=steps[a], **amp_style)
                  for a in range(3)]  # fmt: skip
        traces += [_heatmap(take_slice(phase, a, index[a]), a + 4, origin=origins[a], step=steps[a], **phase_style)
                   for a in range(3)]  # fmt: skip
        layout = _grid_layout(titles, axes=SLICE_AXES_3D, unit=unit, height=560)
        bars = ({"x": 0.9, "y": 0.78, "len": 0.42}, {"x": 0.9, "y": 0.22, "len": 0.42})
    _pin_ranges(layout, traces)
    if amplitude.ndim == 2:
        _rows_downwards(layout)
    layout["coloraxis"] = {"colorscale": AMPLITUDE_COLORSCALE, "reversescale": True, "cmin": 0, "cmax": 1,
                           "colorbar": {"title": {"text": "amplitude (a.u.)"}, **bars[0]}}  # fmt: skip
    layout["coloraxis2"] = {**colour.scale(), "colorbar": colour.colorbar(**bars[1])}
    return {"data": traces, "layout": layout}


def scaled_calculated_intensity(obj: np.ndarray, intensity: np.ndarray, mask: np.ndarray | None = None,
                                psf: np.ndarray | None = None) -> np.ndarray:
    """Return |farfield(obj)|² (blurred by ``psf``, a fitted partial-coherence kernel, when
    given) scaled to ``intensity`` (least squares on amplitudes, unmasked pixels).

    obj : (…) complex, centred; intensity : same shape, photon counts; mask : True = excluded;
    psf : same shape, centred, sums to 1 (a result's ``psf`` array), or None.
    """
    calc = np.abs(farfield(obj)) ** 2
    if psf is not None and np.shape(psf) == calc.shape:
        calc = blur_intensity(calc, psf)
    valid = np.ones(intensity.shape, bool) if mask is None else ~mask
    a_calc = np.sqrt(calc[valid])
    a_meas = np.sqrt(np.clip(intensity[valid], 0, None))
    denom = float(np.sum(a_calc * a_calc))
    scale = float(np.sum(a_meas * a_calc)) / denom if denom > 0 else 1.0
    return (calc * scale**2).astype(np.float32)


def log_intensity(intensity: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Return log10(1 + I) as float32 with NaN at masked pixels (True = excluded)."""
    out = np.log10(1.0 + np.clip(np.asarray(intensity, dtype=np.float32), 0, None))
    if mask is not None:
        out = np.where(mask, np.nan, out)
    return out.astype(np.float32)


def q_steps_per_nm(voxel_size_m: tuple[float | None, ...] | None, shape: tuple[int, ...]) -> list[float | None] | None:
    """Reciprocal-space pixel size Δq = 2π / (N·d) in nm⁻¹ per axis (axis 0 first) of a grid
    ``shape`` whose real-space voxel is ``voxel_size_m`` (m); None on an axis where d is unknown,
    None overall when it is unknown on every axis."""
    sizes = list(voxel_size_m or [None] * len(shape))
    steps = [2.0 * math.pi / (n * float(d) * 1e9) if d is not None and math.isfinite(d) and d > 0 else None
             for n, d in zip(shape, sizes)]  # fmt: skip
    return steps if len(steps) == len(shape) and any(v is not None for v in steps) else None


def _axis_placement(
    ndim: int, q_step: list[float | None] | None, binning: int, peak: tuple[int, ...]
) -> tuple[list[float], list[float], list[str], list[bool]]:
    """Per axis: the (binned) pixel index placed at 0, the step per binned pixel, the axis title
    and whether it is in q. Axes with a known Δq are in nm⁻¹ from the (binned) ``peak`` pixel,
    the others in pixels from pixel 0."""
    pixel = "pixel" if binning == 1 else f"pixel ×{binning}"
    origin, step, titles, in_q = [], [], [], []
    for name, centre, dq in zip(AXIS_NAMES[-ndim:], peak, q_step or [None] * ndim):
        in_q.append(dq is not None)
        if dq is None:
            origin.append(0.0), step.append(1.0), titles.append(f"{name} ({pixel})")
        else:
            origin.append(float(-centre)), step.append(binning * dq), titles.append(f"q{name} (nm⁻¹)")
    return origin, step, titles, in_q


def diffraction_slices_figure(
    measured_log: np.ndarray,
    calculated_log: np.ndarray | None,
    *,
    index: tuple[int, ...] = (),
    zmax: float,
    binning: int = 1,
    q_step: list[float | None] | None = None,
) -> dict[str, Any]:
    """Return measured and (when given) calculated log10 intensity images on one colour scale.

    3D: slices along z, y, x at ``index`` (measured top, calculated bottom); 2D: the images
    side by side. measured_log, calculated_log : log10(1 + photons), NaN = masked;
    binning : factor the arrays were binned by (axes then count binned pixels, labelled so);
    q_step : Δq per un-binned pixel (nm⁻¹, axis 0 first, None where unknown): those axes are
    then in nm⁻¹ from the pixel at ``index`` (the peak), the others in pixels.
    """
    ndim = measured_log.ndim
    peak = tuple(index) if len(index) == ndim else tuple(n // 2 for n in measured_log.shape)
    origin, step, names, in_q = _axis_placement(ndim, q_step, binning, peak)
    rows = [("measured", measured_log)] + ([("calculated", calculated_log)] if calculated_log is not None else [])
    hover = "(%{x:.3g}, %{y:.3g})<br>"

    def image(img: np.ndarray, n: int, name: str, h: int, v: int) -> dict[str, Any]:
        """Heatmap of ``img`` on subplot ``n``, horizontal array axis ``h``, vertical ``v``."""
        return _heatmap(img, n, origin=(origin[h], origin[v]), step=(step[h], step[v]), coloraxis="coloraxis",
                        hovertemplate=f"{hover}{name} log10(I+1) %{{z:.2f}}<extra></extra>")  # fmt: skip

    if ndim == 2:
        planes = [(1, 0)] * len(rows)  # (horizontal, vertical) array axes of each subplot
        traces = [image(img, c + 1, name, 1, 0) for c, (name, img) in enumerate(rows)]
        layout = _grid_layout([[name for name, _ in rows]], axes=[(names[1], names[0])] * len(rows), unit=None,
                              height=420)  # fmt: skip
    else:
        titles = [[f"{name}, {AXIS_NAMES[a]} = {index[a]}" for a in range(3)] for name, _ in rows]
        planes = [(2, 1), (2, 0), (1, 0)] * len(rows)  # slices along z, y, x in each row
        traces = [image(take_slice(vol, a, index[a]), r * 3 + a + 1, name, *planes[a])
                  for r, (name, vol) in enumerate(rows) for a in range(3)]  # fmt: skip
        # wider gaps: an image that fills its panel (see below) leaves no room for the next
        # panel's y-axis title otherwise
        layout = _grid_layout(titles, axes=[(names[h], names[v]) for h, v in planes[:3]], unit=None,
                              height=60 + 300 * len(rows), gap_x=0.1)  # fmt: skip
    _pin_ranges(layout, traces)
    if ndim == 2:
        _rows_downwards(layout)
    for trace, (h, v) in zip(traces, planes):
        xaxis, yaxis = layout[trace["xaxis"].replace("x", "xaxis", 1)], layout[trace["yaxis"].replace("y", "yaxis", 1)]
        spans = [abs(a["range"][1] - a["range"][0]) for a in (xaxis, yaxis)]
        if in_q[h] != in_q[v] or max(spans) > 2.5 * min(spans):
            # q against pixels has no common scale, and a rocking scan's narrow q range along
            # the rocking axis would squash the slice to a strip: let the image fill its panel
            yaxis.pop("scaleanchor", None)
    layout["coloraxis"] = {"colorscale": INTENSITY_COLORSCALE, "cmin": 0, "cmax": zmax,
                           "colorbar": {"title": {"text": "log10 intensity<br>(1 + photons)"}, "x": 0.9}}  # fmt: skip
    return {"data": traces, "layout": layout}


# --------------------------------------------------------------------------- curves
ERROR_CURVE_PREFIXES = ("chi2", "llk", "error", "err_", "loss", "train_loss", "val_loss")
CURVE_LABELS = {"chi2": "χ²", "chi2_free": "χ² free", "llk": "log-likelihood", "llk_free": "log-likelihood free",
                "support_fraction": "support fraction"}  # fmt: skip


def _segments_from_index(index: np.ndarray, names: list[str]) -> list[dict[str, Any]]:
    """Segments where a per-iteration segment number changes; named from ``names`` when they match."""
    index = np.asarray(index, dtype=np.float64)
    cuts = [0, *(np.flatnonzero(np.diff(index) != 0) + 1).tolist(), index.size]
    spans = list(zip(cuts[:-1], cuts[1:]))
    return [{"name": names[i] if len(names) == len(spans) else "", "start": int(a), "end": int(b)}
            for i, (a, b) in enumerate(spans)]  # fmt: skip


def error_curves_figure(curves: dict[str, Any], *, algorithm: str = "") -> dict[str, Any]:
    """Return error curves vs iteration (log y) with the algorithm's segments shaded and named.

    curves : {name: (n,) floats}. Names starting with chi2 / llk / error / loss are drawn on the
    log axis (NaN gaps, e.g. a χ² free evaluated every few iterations, are bridged);
    "support_fraction" goes on a linear right axis; a per-iteration "segment" number, when
    present, places the segment boundaries, else the schedule string ``algorithm`` does (only
    when its length matches the curves).
    """
    traces = []
    length = 0
    for name, values in curves.items():
        y = np.asarray(values, dtype=np.float64).ravel()
        label = CURVE_LABELS.get(name, name.replace("_", " "))
        if y.size == 0 or not (name.startswith(ERROR_CURVE_PREFIXES) or name == "support_fraction"):
            continue
        length = max(length, y.size)
        finite = np.isfinite(y)
        sparse = finite.sum() < 0.5 * y.size
        trace = {"type": "scatter", "mode": "lines+markers" if sparse else "lines", "name": label,
                 "connectgaps": True, "marker": {"size": 3},
                 "x": typed_array(np.arange(y.size, dtype=np.float32)),
                 "hovertemplate": "iteration %{x}<br>%{y:.4g}<extra>" + label + "</extra>"}  # fmt: skip
        if name == "support_fraction":
            trace.update(yaxis="y2", line={"dash": "dot", "width": 1}, y=typed_array(y.astype(np.float32)))
        else:
            trace["y"] = typed_array(np.where(finite & (y > 0), y, np.nan).astype(np.float32))
        traces.append(trace)
    merged = schedule_segments(algorithm)
    if "segment" in curves and np.size(curves["segment"]) == length and length:
        segments = _segments_from_index(np.ravel(curves["segment"]), [m["name"] for m in merged])
    else:
        segments = merged if merged and merged[-1]["end"] == length else []
    shapes, annotations = [], []
    for seg in segments:
        shapes.append({"type": "rect", "xref": "x", "yref": "paper", "x0": seg["start"] - 0.5,
                       "x1": seg["end"] - 0.5, "y0": 0, "y1": 1, "line": {"width": 0}, "layer": "below",
                       "fillcolor": SEGMENT_COLOURS.get(seg["name"], "rgba(128,128,128,0.06)")})  # fmt: skip
        if seg["name"]:
            annotations.append({"text": seg["name"], "xref": "x", "yref": "paper", "x": (seg["start"] + seg["end"]) / 2,
                                "y": 1.0, "yanchor": "bottom", "showarrow": False, "font": {"size": 10}})  # fmt: skip
    layout = {
        "title": {"text": f"error vs iteration{f' — {algorithm}' if algorithm else ''}", "font": {"size": 13}},
        "xaxis": {"title": {"text": "iteration"}},
        "yaxis": {"title": {"text": "error (χ², dimensionless)"}, "type": "log", "exponentformat": "power"},
        "shapes": shapes, "annotations": annotations, "height": 340,
        "margin": {"l": 60, "r": 60, "t": 50, "b": 40}, "legend": {"orientation": "h", "y": -0.25},
    }  # fmt: skip
    if "support_fraction" in curves and any(t.get("yaxis") == "y2" for t in traces):
        top = float(np.nanmax(np.asarray(curves["support_fraction"], dtype=np.float64))) if np.size(curves["support_fraction"]) else 1.0
        layout["yaxis2"] = {"title": {"text": "support fraction"}, "overlaying": "y", "side": "right",
                            "showgrid": False, "range": [0, 1.15 * top if top > 0 else 1], "nticks": 5,
                            "tickformat": ".1%"}  # fmt: skip
    return {"data": traces, "layout": layout, "meta": {"segments": segments}}


def schedule_segments(algorithm: str) -> list[dict[str, Any]]:
    """Return the ``[{"name", "start", "end"}]`` iteration ranges of a schedule string (end
    exclusive, repeats merged); empty when there is no string or the phasing parser refuses it."""
    if not algorithm:
        return []
    try:
        segments = parse_schedule(algorithm).segments()
    except ConfigError:
        return []
    return [{"name": seg.name, "start": seg.start, "end": seg.end} for seg in segments]


def prtf_resolution(freq: np.ndarray, prtf: np.ndarray) -> float | None:
    """Return the first frequency where the PRTF drops below 1/e (linear interpolation), or None."""
    freq = np.asarray(freq, dtype=np.float64)
    prtf = np.asarray(prtf, dtype=np.float64)
    limit = 1.0 / math.e
    below = np.flatnonzero(prtf < limit)
    if below.size == 0:
        return None
    i = int(below[0])
    if i == 0:
        return float(freq[0])
    f0, f1, p0, p1 = freq[i - 1], freq[i], prtf[i - 1], prtf[i]
    return float(f0 + (p0 - limit) / (p0 - p1) * (f1 - f0)) if p0 != p1 else float(f1)


def prtf_figure(
    freq: np.ndarray, prtf: np.ndarray, *, freq_unit: str = "cycles per pixel",
    voxel_size_m: tuple[float | None, ...] | None = None,
) -> dict[str, Any]:
    """Return the PRTF vs spatial frequency with the 1/e line and the resolution marked.

    freq : (n,) spatial frequency in ``freq_unit``; prtf : (n,) in [0, 1]; voxel_size_m : the
    grid's voxel size (m per axis, axis 0 first): when known on every axis, the half-period
    resolution in pixels is also given in nm per axis.
    ``figure["meta"]["resolution"]`` is the 1/e crossing (same unit as freq) or None;
    ``meta["resolution_nm"]`` the half-period in nm per axis, or None.
    """
    res = prtf_resolution(freq, prtf)
    nm = units_info(voxel_size_m, len(voxel_size_m or ()) or 3)["voxel_size_nm"] if voxel_size_m else None
    resolution_nm = [0.5 / res * v for v in nm] if res and nm and freq_unit == "cycles per pixel" else None
    traces = [{"type": "scatter", "mode": "lines+markers", "name": "PRTF", "marker": {"size": 4},
               "x": typed_array(np.asarray(freq, np.float32)), "y": typed_array(np.asarray(prtf, np.float32))}]  # fmt: skip
    shapes = [{"type": "line", "xref": "paper", "yref": "y", "x0": 0, "x1": 1, "y0": 1 / math.e, "y1": 1 / math.e,
               "line": {"dash": "dash", "color": "#c33", "width": 1}}]  # fmt: skip
    annotations = [{"text": "1/e", "xref": "paper", "yref": "y", "x": 1, "y": 1 / math.e, "xanchor": "right",
                    "yanchor": "bottom", "showarrow": False, "font": {"color": "#c33"}}]  # fmt: skip
    if res is not None:
        text = f"1/e at {res:.3g} {freq_unit}"
        if freq_unit == Q_UNIT and res > 0:
            text += f" (half-period resolution π / q = {math.pi / res:.1f} nm)"
        if freq_unit == "cycles per pixel" and res > 0:
            text += f" (half-period resolution {0.5 / res:.2f} pixels"
            if resolution_nm:
                names = AXIS_NAMES[-len(resolution_nm):]
                text += f" = {' × '.join(f'{v:.0f}' for v in resolution_nm)} nm along {', '.join(names)}"
            text += ")"
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": res, "x1": res, "y0": 0, "y1": 1,
                       "line": {"dash": "dot", "color": "#555", "width": 1}})  # fmt: skip
        annotations.append({"text": text, "xref": "x", "yref": "paper", "x": res, "y": 0.95,
                            "xanchor": "left" if res < 0.5 * float(np.nanmax(freq)) else "right",
                            "showarrow": False})  # fmt: skip
    if res is None:
        annotations.append({"text": "above 1/e up to the highest frequency", "xref": "paper", "yref": "paper",
                            "x": 0.98, "y": 0.05, "xanchor": "right", "showarrow": False})  # fmt: skip
    layout = {"title": {"text": "phase retrieval transfer function", "font": {"size": 13}},
              "xaxis": {"title": {"text": "|q| (nm⁻¹)" if freq_unit == Q_UNIT else f"spatial frequency ({freq_unit})"}},
              "yaxis": {"title": {"text": "PRTF"}, "range": [0, 1.05]}, "shapes": shapes,
              "annotations": annotations, "height": 320, "margin": {"l": 60, "r": 10, "t": 40, "b": 45}}  # fmt: skip
    return {"data": traces, "layout": layout,
            "meta": {"resolution": res, "freq_unit": freq_unit, "resolution_nm": resolution_nm}}  # fmt: skip


def psf_figure(psf: np.ndarray, *, half_width: int = 6) -> dict[str, Any] | None:
    """Return the fitted partial-coherence kernel's profiles through its peak along each axis
    (fraction of the peak vs offset in pixels, ± ``half_width``), or None for a non-finite or
    empty kernel. psf : (…) centred kernel (a result's ``psf`` array, peak near N // 2).
    ``figure["meta"]["fwhm_px"]``: the FWHM per axis (``reconstruction.phasing.coherence.fwhm_of``).
    """
    from reconstruction.phasing.coherence import fwhm_of

    k = np.asarray(psf, np.float64)
    if k.ndim not in (2, 3) or not np.isfinite(k).all() or k.max() <= 0:
        return None
    peak = np.unravel_index(int(np.argmax(k)), k.shape)
    fwhm = fwhm_of(k)
    names = AXIS_NAMES[-k.ndim:]
    traces = []
    for axis, name in enumerate(names):
        lo, hi = max(0, peak[axis] - half_width), min(k.shape[axis], peak[axis] + half_width + 1)
        index = list(peak)
        index[axis] = slice(lo, hi)
        profile = k[tuple(index)] / k[peak]
        traces.append({"type": "scatter", "mode": "lines+markers", "marker": {"size": 4},
                       "name": f"along {name} (FWHM {fwhm[axis]:.2f} px)",
                       "x": typed_array(np.arange(lo - peak[axis], hi - peak[axis], dtype=np.float32)),
                       "y": typed_array(profile.astype(np.float32))})  # fmt: skip
    layout = {"title": {"text": "partial-coherence PSF fitted to the data (profiles through its peak)", "font": {"size": 13}},
              "xaxis": {"title": {"text": "offset (pixels of the diffraction pattern)"}},
              "yaxis": {"title": {"text": "fraction of the peak"}, "range": [0, 1.05]},
              "legend": {"orientation": "h", "y": -0.3}, "height": 320,
              "margin": {"l": 60, "r": 10, "t": 40, "b": 80}}  # fmt: skip
    return {"data": traces, "layout": layout, "meta": {"fwhm_px": fwhm}}


def loss_curves_figure(history: Any) -> dict[str, Any] | None:
    """Return training / validation loss curves from a training history, or None if there is none.

    history : {name: [floats]} (e.g. "train_loss", "val_loss", optional "step"/"epoch" as x)
    or a list of per-epoch dicts ``[{"epoch": 1, "train_loss": …, "val_loss": …}, …]``.
    """
    if isinstance(history, list):
        rows = [r for r in history if isinstance(r, dict)]
        keys = sorted({k for r in rows for k in r})
        history = {k: [r.get(k) for r in rows] for k in keys}
    if not isinstance(history, dict):
        return None
    x_key = next((k for k in ("step", "epoch", "iteration") if k in history), None)
    traces = []
    for name in sorted(history, key=lambda n: (not n.startswith("train"), n)):  # training first
        values = history[name]
        if name == x_key or "loss" not in name or not isinstance(values, list | tuple) or not values:
            continue
        y = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
        x = np.asarray(history[x_key], dtype=np.float64) if x_key and len(history[x_key]) == y.size else np.arange(y.size)
        traces.append({"type": "scatter", "mode": "lines+markers", "name": name.replace("_", " "),
                       "x": x.tolist(), "y": [None if not np.isfinite(v) else float(v) for v in y]})  # fmt: skip
    if not traces:
        return None
    layout = {"title": {"text": "training and validation loss", "font": {"size": 13}},
              "xaxis": {"title": {"text": x_key or "epoch"}}, "yaxis": {"title": {"text": "loss"}, "type": "log"},
              "height": 320, "margin": {"l": 60, "r": 10, "t": 40, "b": 40}}  # fmt: skip
    return {"data": traces, "layout": layout}


# --------------------------------------------------------------------------- bundles
def _peak_index(intensity: np.ndarray, mask: np.ndarray | None) -> tuple[int, ...]:
    """Index of the brightest unmasked voxel."""
    values = intensity if mask is None else np.where(mask, -np.inf, intensity)
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(values)), values.shape))


def crop_object(
    obj: np.ndarray, support: np.ndarray | None, *, threshold: float = DEFAULT_THRESHOLD
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, ...]]:
    """Return (relative amplitude, referenced phase, support, origin) cropped to the support.

    obj : (Z, Y, X) or (Y, X) complex; support : same shape bool, or None / empty (then
    amplitude > ``threshold``·max). Amplitude is divided by its maximum; phase is
    ``reference_phase``; the crop is ``support_bbox`` (2-voxel margin) whose corner is ``origin``.
    """
    if obj.ndim not in (2, 3):
        raise InvalidDataError(f"the viewer draws 2D or 3D objects, got shape {obj.shape}")
    amplitude = np.abs(obj).astype(np.float32)
    amplitude /= float(amplitude.max()) or 1.0
    if support is None or not np.any(support):
        support = amplitude > threshold
    phase = reference_phase(obj, support)
    box = support_bbox(support)
    return amplitude[box], phase[box], support[box], tuple(int(s.start) for s in box)


def object_isosurface_figure(
    obj: np.ndarray, support: np.ndarray | None, *, threshold: float = DEFAULT_THRESHOLD,
    max_vertices: int = DEFAULT_MAX_VERTICES, voxel_size_m: tuple[float | None, ...] | None = None,
    remove_ramp: bool = False, g_norm_per_m: float | None = None, displacement: bool = False,
    strain: bool = False, strain_geometry: tuple | None = None,
) -> dict[str, Any]:
    """Isosurface coloured by phase of a complex 3D object (cropped as in ``crop_object``);
    positions in nm when ``voxel_size_m`` (m per axis) is fully known, else in voxels;
    ``remove_ramp``, ``g_norm_per_m``, ``displacement``, ``strain`` and ``strain_geometry`` as
    in ``object_bundle``."""
    if remove_ramp:
        obj, _ = _without_phase_ramp(obj, support)
    amp_c, ph_c, sup_c, origin = crop_object(obj, support, threshold=threshold)
    if amp_c.ndim != 3:
        raise InvalidDataError(f"an isosurface needs a 3D object, got shape {obj.shape}")
    nm = units_info(voxel_size_m, 3)["voxel_size_nm"]
    values, colour = _colour_values(amp_c, ph_c, shown_region(amp_c, sup_c), g_norm_per_m,
                                    field=_field_name(displacement, strain), strain_geometry=strain_geometry)
    return isosurface_figure(amp_c, values, threshold=threshold, max_vertices=max_vertices, origin=origin,
                             voxel_size_nm=nm, colour=colour)  # fmt: skip


def shown_region(relative_amplitude: np.ndarray, support: np.ndarray) -> np.ndarray:
    """Where phase (or displacement) is drawn: inside ``support`` and where the amplitude
    (relative to the object's maximum) reaches ``PHASE_SHOWN_ABOVE``."""
    return support & (relative_amplitude >= PHASE_SHOWN_ABOVE)


def _field_name(displacement: bool, strain: bool) -> str:
    """The field asked for: "strain", "displacement" or "phase"."""
    return "strain" if strain else "displacement" if displacement else "phase"


def _colour_values(
    amplitude: np.ndarray, phase: np.ndarray, shown: np.ndarray, g_norm_per_m: float | None, *,
    field: str = "phase", strain_geometry: tuple | None = None,
) -> tuple[np.ndarray, ColourField]:
    """The values that colour the object and their colour field: the phase; with
    ``field="displacement"`` and |G| the displacement along G (pm); with ``field="strain"``, |G|
    and ``strain_geometry`` (voxel basis, G direction) the strain along G (%); NaN outside
    ``shown``. A field that cannot be computed falls back to the phase."""
    from reconstruction.metrics import displacement_field, strain_along_g

    obj = amplitude * np.exp(1j * phase)
    if field == "strain" and g_norm_per_m is not None and strain_geometry is not None and obj.ndim == 3:
        basis, direction = strain_geometry
        eps_pct = 100 * strain_along_g(obj, g_norm_per_m, direction, basis, support=shown)
        return eps_pct.astype(np.float32), strain_colour(eps_pct)
    if field == "displacement" and g_norm_per_m is not None:
        u_pm = 1e12 * displacement_field(obj, g_norm_per_m, support=shown)
        return u_pm.astype(np.float32), displacement_colour(u_pm)
    return phase, PHASE_FIELD


def displacement_info(g_norm_per_m: float | None, shown: bool) -> dict[str, Any]:
    """Whether the displacement along G can be shown (|G| known) and is shown, with |G| and d."""
    if g_norm_per_m is None:
        return {"available": False, "shown": False,
                "note": "displacement: needs the wavelength and the Bragg angle in the data's metadata"}  # fmt: skip
    g_nm, d_nm = g_norm_per_m * 1e-9, 2 * math.pi / g_norm_per_m * 1e9
    note = (f"u = −φ / |G| along the Bragg vector, |G| = 4π sin θ_B / λ = {g_nm:.2f} nm⁻¹ (d = {d_nm:.4f} nm); "
            "mean over the crystal set to 0, sign reversed for the twin solution")  # fmt: skip
    return {"available": True, "shown": shown, "g_norm_per_nm": g_nm, "d_spacing_nm": d_nm, "note": note}


Q_UNIT = "nm⁻¹"  # the PRTF's axis unit when the result holds it against the true |q|
FIELD_STATS_ABOVE = 0.3  # the crystal's core for the field's statistics: amplitude ≥ 30 % of max


def field_stats(values: np.ndarray, relative_amplitude: np.ndarray, colour: ColourField) -> dict[str, Any] | None:
    """Statistics of the colouring field (phase, displacement or strain, in its unit) over the
    crystal's core (finite values where the amplitude is ≥ ``FIELD_STATS_ABOVE`` of its maximum):
    count, mean, standard deviation, 1st and 99th percentiles and a one-line ``text``."""
    core = np.isfinite(values) & (relative_amplitude >= FIELD_STATS_ABOVE)
    if not core.any():
        return None
    v = values[core].astype(np.float64)
    p1, p99 = (float(x) for x in np.percentile(v, [1, 99]))
    out = {"count": int(v.size), "mean": float(v.mean()), "std": float(v.std()), "p1": p1, "p99": p99,
           "unit": colour.unit}  # fmt: skip
    fmt = "{:+.4f}" if colour.name == "strain" else "{:+.1f}" if colour.name == "displacement" else "{:+.3f}"
    out["text"] = (f"{colour.label} over the crystal (amplitude ≥ {100 * FIELD_STATS_ABOVE:.0f} %, {v.size} voxels): "
                   f"mean {fmt.format(out['mean'])}, σ {fmt.format(out['std']).lstrip('+')}, "
                   f"1st–99th percentile {fmt.format(p1)} … {fmt.format(p99)} {colour.unit}")  # fmt: skip
    return out


def strain_info(g_norm_per_m: float | None, strain_geometry: tuple | None, shown: bool) -> dict[str, Any]:
    """Whether the strain along G can be shown (|G| and the direction of G on the object's grid
    known: ``reconstruction.geometry``) and is shown, with a note."""
    if g_norm_per_m is None or strain_geometry is None:
        return {"available": False, "shown": False,
                "note": "strain: needs |G| and the diffractometer geometry of the data"}  # fmt: skip
    return {"available": True, "shown": shown,
            "note": "ε = Ĝ·∇u, the derivative of u along G; blank on the crystal's outer voxel layer"}  # fmt: skip


def units_info(voxel_size_m: tuple[float | None, ...] | None, ndim: int) -> dict[str, Any]:
    """Return how positions are labelled: ``unit`` ("nm", or "voxel" / "pixel" when the voxel
    size is not known along every axis), ``voxel_size_nm`` (per axis, axis 0 first, or None)
    and ``note``, a sentence for the page saying which."""
    names = AXIS_NAMES[-ndim:]
    sizes = list(voxel_size_m or [None] * ndim)
    if len(sizes) == ndim and all(v is not None and math.isfinite(v) and v > 0 for v in sizes):
        nm = [float(v) * 1e9 for v in sizes]
        text = " × ".join(f"{v:.3g}" for v in nm)
        return {"unit": "nm", "voxel_size_nm": nm,
                "note": f"voxel size {text} nm ({' × '.join(names)}), from the data's acquisition metadata"}  # fmt: skip
    known = [n for n, v in zip(names, sizes) if v is not None]
    why = f"known along {', '.join(known)} only" if known else "not in the data's metadata"
    unit = "voxel" if ndim == 3 else "pixel"
    return {"unit": unit, "voxel_size_nm": None, "note": f"positions in {unit}s: the real-space voxel size is {why}"}


def _without_phase_ramp(obj: np.ndarray, support: np.ndarray | None) -> tuple[np.ndarray, list[float]]:
    """``obj`` with its linear phase ramp removed (fitted over the support, else 10 % of the
    maximum amplitude) and that ramp in rad per voxel, axis 0 first."""
    from reconstruction.metrics.alignment import apply_phase_ramp, fit_phase_ramp

    region = support if support is not None and support.any() else np.abs(obj) > 0.1 * np.abs(obj).max()
    masked = obj * region
    ramp = fit_phase_ramp(masked, np.abs(masked).astype(np.complex128))
    return apply_phase_ramp(obj, ramp).astype(obj.dtype), [float(g) for g in ramp]


def object_bundle(
    obj: np.ndarray,
    support: np.ndarray | None,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    max_vertices: int = DEFAULT_MAX_VERTICES,
    voxel_size_m: tuple[float | None, ...] | None = None,
    remove_ramp: bool = False,
    g_norm_per_m: float | None = None,
    displacement: bool = False,
    frame: dict[str, Any] | None = None,
    strain: bool = False,
    strain_geometry: tuple | None = None,
) -> dict[str, Any]:
    """Return the object part of a result page: isosurface (3D), slice figure, quantised volumes.

    obj : (Z, Y, X) or (Y, X) complex, centred; support : same shape bool or None (then
    amplitude > ``threshold``·max is used); voxel_size_m : per-axis voxel size (m), None where
    unknown (see ``units_info``); remove_ramp : show the phase with its linear ramp (fitted
    over the support) removed, ``phase_ramp`` then gives it in rad per voxel (axis 0 first).
    Arrays are cropped to the support's bounding box (+2 voxels); ``origin`` is that box's
    corner in the full grid, ``index`` the default (centre-of-mass) slice. Phase is shown inside
    the support where the amplitude is at least ``PHASE_SHOWN_ABOVE`` of its maximum. 2D objects
    have no isosurface and no volumes (``isosurface`` None). g_norm_per_m : |G| (1/m) of a Bragg
    reflection, None when unknown; with ``displacement`` the displacement along G (pm,
    ``reconstruction.metrics.displacement_field``) replaces the phase in the isosurface colours,
    the slices and the ``phase`` volume; ``field`` names what they show, ``displacement`` says
    whether it can be shown (``displacement_info``). strain, strain_geometry : the strain along G
    (%, ``reconstruction.metrics.strain_along_g``) instead, given (voxel basis of ``obj``'s grid,
    m; G direction, lab) from the diffractometer geometry (``strain_info``). frame : which grid ``obj`` is on
    (``webapp.viewer.frames.frame_info``), passed through; on the lab grid the units note says so.
    """
    ramp = None
    if remove_ramp:
        obj, ramp = _without_phase_ramp(obj, support)
    amp_c, ph_c, sup_c, origin = crop_object(obj, support, threshold=threshold)
    index = tuple(int(round(c)) for c in ndimage.center_of_mass(sup_c.astype(np.float32)))
    shown = shown_region(amp_c, sup_c)
    units = units_info(voxel_size_m, obj.ndim)
    nm = units["voxel_size_nm"]
    frame = frame or {"available": False, "shown": "data", "note": ""}
    if frame["shown"] == "lab" and nm:
        units["note"] = f"cubic voxels of {nm[0]:.3g} nm on an orthogonal lab grid, resampled from the data's grid"
    values, colour = _colour_values(amp_c, ph_c, shown, g_norm_per_m, field=_field_name(displacement, strain),
                                    strain_geometry=strain_geometry)  # fmt: skip
    out: dict[str, Any] = {
        "ndim": obj.ndim,
        "shape": list(obj.shape),
        "origin": list(origin),
        "index": list(index),
        "support_voxels": int(sup_c.sum()),
        "units": units,
        "isosurface": None,
        "phase_ramp": ramp,
        "field": {"name": colour.name, "label": colour.label, "title": colour.title},
        "displacement": displacement_info(g_norm_per_m, colour.name == "displacement"),
        "strain": strain_info(g_norm_per_m, strain_geometry if obj.ndim == 3 else None, colour.name == "strain"),
        "frame": frame,
        "field_stats": field_stats(values, amp_c, colour),
        "slices": object_slices_figure(
            amp_c, values, shown, index=index, origin=origin, voxel_size_nm=nm, colour=colour
        ),
    }
    if obj.ndim == 3:
        out["isosurface"] = isosurface_figure(amp_c, values, threshold=threshold, max_vertices=max_vertices,
                                              origin=origin, voxel_size_nm=nm, colour=colour)  # fmt: skip
        out["amplitude"] = encode_volume(amp_c, lo=0.0, hi=1.0)
        out["phase"] = encode_volume(np.where(shown, values, np.nan), lo=colour.lo, hi=colour.hi)
    return out


def diffraction_bundle(
    intensity: np.ndarray, mask: np.ndarray | None = None, *, obj: np.ndarray | None = None,
    voxel_size_m: tuple[float | None, ...] | None = None, psf: np.ndarray | None = None,
) -> dict[str, Any]:
    """Return measured (and calculated from ``obj``, blurred by ``psf`` when the result fitted
    one) log-intensity volumes and their slice figure.

    intensity : (Z, Y, X) or (Y, X) photon counts; mask : True = excluded; obj : the
    reconstruction on the same grid, centred; voxel_size_m : the real-space voxel (m per axis)
    of this grid: when known on every axis the slices are in Δq (nm⁻¹, ``q_step``), else in
    pixels. Arrays larger than ``MAX_SLICE_SIDE`` per axis (3D) or 4× that (2D) are mean-binned
    (the factor is ``binning``); the default slice goes through the (binned) peak. 2D bundles
    carry no volumes, only the figure.
    """
    meas = log_intensity(intensity, mask)
    calc = log_intensity(scaled_calculated_intensity(obj, intensity, mask, psf)) if obj is not None else None
    side = MAX_SLICE_SIDE if intensity.ndim == 3 else 4 * MAX_SLICE_SIDE
    meas_b, factor = bin_volume(meas, max_side=side)
    calc_b = bin_volume(calc, max_side=side)[0] if calc is not None else None
    finite = meas_b[np.isfinite(meas_b)]
    zmax = float(finite.max()) if finite.size else 1.0
    if calc_b is not None and np.isfinite(calc_b).any():
        zmax = max(zmax, float(np.nanmax(calc_b)))
    zmax = zmax or 1.0
    index = _peak_index(np.nan_to_num(meas_b, nan=-np.inf), None)
    out: dict[str, Any] = {
        "ndim": intensity.ndim,
        "shape": list(intensity.shape),
        "binning": factor,
        "index": list(index),
        "zmax": zmax,
        "q_step": q_steps_per_nm(voxel_size_m, tuple(intensity.shape)),
    }
    out["slices"] = diffraction_slices_figure(meas_b, calc_b, index=index, zmax=zmax, binning=factor,
                                              q_step=out["q_step"])  # fmt: skip
    if intensity.ndim == 3:
        out["measured"] = encode_volume(meas_b, lo=0.0, hi=zmax)
        if calc_b is not None:
            out["calculated"] = encode_volume(calc_b, lo=0.0, hi=zmax)
    return out


def intensity_isosurface_figure(intensity: np.ndarray, mask: np.ndarray | None = None, *, levels: tuple[float, ...] = (0.35, 0.6)) -> dict[str, Any]:
    """Return nested semi-transparent isosurfaces of log10(1 + I) (a 3D view of a dataset).

    intensity : (Z, Y, X) photon counts; levels : fractions of max log-intensity. The volume is
    binned to <= 48 voxels per axis first.
    """
    log_i = np.nan_to_num(log_intensity(intensity, mask), nan=0.0)
    binned, factor = bin_volume(log_i, max_side=48, reduce="max")
    top = float(binned.max())
    traces = []
    if top > 0:
        padded = np.pad(binned, 1)
        for level, opacity in zip(levels, (0.25, 0.8, 1.0)):
            try:
                verts, faces, _, _ = measure.marching_cubes(padded, level=level * top, allow_degenerate=False)
            except (ValueError, RuntimeError):
                continue
            verts = (verts - 1.0) * factor
            traces.append({"type": "mesh3d", "x": typed_array(verts[:, 2]), "y": typed_array(verts[:, 1]),
                           "z": typed_array(verts[:, 0]), "i": typed_array(faces[:, 0], "u4"),
                           "j": typed_array(faces[:, 1], "u4"), "k": typed_array(faces[:, 2], "u4"),
                           "opacity": opacity, "color": INTENSITY_LEVEL_COLOURS[len(traces)],
                           "name": f"log10(1+I) = {level * top:.2f}", "showlegend": True,
                           "hoverinfo": "name"})  # fmt: skip
    scene_axis = {"showbackground": False}
    layout = {"title": {"text": "3D view: isosurfaces of log10(1 + photons)", "font": {"size": 13}},
              "scene": {"aspectmode": "data", "xaxis": {**scene_axis, "title": {"text": "x (pixel)"}},
                        "yaxis": {**scene_axis, "title": {"text": "y (pixel)"}},
                        "zaxis": {**scene_axis, "title": {"text": "frame / z (pixel)"}}},
              "margin": {"l": 0, "r": 0, "t": 40, "b": 0}, "showlegend": True,
              "legend": {"x": 0, "y": 0}}  # fmt: skip
    return {"data": traces, "layout": layout}


def result_bundle(
    record: Any, *, threshold: float = DEFAULT_THRESHOLD, max_vertices: int = DEFAULT_MAX_VERTICES,
    voxel_size_m: tuple[float | None, ...] | None = None, remove_ramp: bool = False,
    g_norm_per_m: float | None = None, displacement: bool = False, object_view: Any = None,
    strain: bool = False,
) -> dict[str, Any]:
    """Return every figure of a result page from a ``ResultRecord`` (JSON-serialisable dict).

    Keys: ``object`` (see ``object_bundle``; positions in nm when ``voxel_size_m``, m per axis,
    is known; ``remove_ramp``: its phase without the linear ramp, the diffraction unchanged;
    ``g_norm_per_m``, ``displacement``: the displacement along G instead of the phase), ``diffraction`` (see ``diffraction_bundle``, or None when the record has no
    intensity), ``errors`` (error-curve figure or None), ``prtf`` (figure or None), ``psf`` (the
    fitted partial-coherence kernel's profiles, ``psf_figure``, or None), ``metrics``,
    ``algorithm``. object_view : what to draw instead of the record's own object (an
    ``ObjectView`` of ``webapp.viewer.frames``: object, support, voxel size, frame, strain
    geometry); the diffraction keeps the record's grid. strain : the strain along G (needs the
    view's strain geometry).
    """
    obj = np.asarray(record.obj)
    support = None if record.support is None else np.asarray(record.support, dtype=bool)
    view = object_view
    bundle: dict[str, Any] = {
        "object": object_bundle(obj if view is None else view.obj, support if view is None else view.support,
                                threshold=threshold, max_vertices=max_vertices,
                                voxel_size_m=voxel_size_m if view is None else view.voxel_size_m,
                                remove_ramp=remove_ramp, g_norm_per_m=g_norm_per_m, displacement=displacement,
                                frame=None if view is None else view.frame, strain=strain,
                                strain_geometry=None if view is None else view.strain_geometry),
        "diffraction": None,
        "errors": None,
        "prtf": None,
        "metrics": {k: _jsonable_number(v) for k, v in (record.metrics or {}).items()},
        "algorithm": record.algorithm or "",
    }
    intensity = getattr(record, "intensity", None)
    if intensity is not None and np.shape(intensity) == obj.shape:
        mask = getattr(record, "mask", None)
        mask = None if mask is None or np.shape(mask) != obj.shape else np.asarray(mask, dtype=bool)
        psf = (record.arrays or {}).get("psf")
        bundle["diffraction"] = diffraction_bundle(np.asarray(intensity), mask, obj=obj, voxel_size_m=voxel_size_m,
                                                   psf=None if psf is None else np.asarray(psf))
    if record.curves:
        bundle["errors"] = error_curves_figure(record.curves, algorithm=record.algorithm or "")
    arrays = record.arrays or {}
    q_curve = np.asarray(arrays.get("prtf_q", [])).ravel()
    q_axis = np.asarray(arrays.get("prtf_q_per_nm", [])).ravel()
    if q_curve.size > 1 and q_axis.size == q_curve.size:  # against the true |q| (phase_file)
        bundle["prtf"] = prtf_figure(q_axis, q_curve, freq_unit=Q_UNIT)
    elif "prtf" in arrays:
        prtf = np.asarray(arrays["prtf"]).ravel()
        freq = np.asarray(arrays.get("prtf_freq", [])).ravel()
        if freq.size == prtf.size and prtf.size > 1:
            bundle["prtf"] = prtf_figure(freq, prtf, freq_unit="cycles per pixel", voxel_size_m=voxel_size_m)
    bundle["psf"] = psf_figure(arrays["psf"]) if "psf" in arrays else None
    return bundle


def _jsonable_number(value: Any) -> Any:
    """Floats as floats (NaN/inf as None), everything else unchanged."""
    if isinstance(value, (float, np.floating, int, np.integer)):
        f = float(value)
        return f if math.isfinite(f) else None
    return value


def aligned_result_bundle(
    record: Any, reference: Any, *, threshold: float = DEFAULT_THRESHOLD,
    max_vertices: int = DEFAULT_MAX_VERTICES, voxel_size_m: tuple[float | None, ...] | None = None,
    view: Any = None, g_norm_per_m: float | None = None, displacement: bool = False, strain: bool = False,
) -> dict[str, Any]:
    """Return the compare-page part of ``record`` aligned onto ``reference`` (two ResultRecords).

    The object is aligned with ``reconstruction.metrics.align_to_reference`` (integer and
    sub-voxel shift, twin, phase ramp, global phase; its support moves with it), then drawn as
    in ``object_bundle``. Keys: ``object``, ``metrics`` and ``alignment``: the library's info
    plus ``text``, one line saying what was done (shift in voxels as (x, y, z)), or, when the
    grids differ, ``{"aligned": False, "text": why}`` and the object as it is. ``view`` (a
    function of (object, support) returning a ``webapp.viewer.frames.ObjectView``) draws the
    aligned object on another grid (the lab frame); ``g_norm_per_m``, ``displacement`` and
    ``strain`` choose the colouring field as in ``object_bundle``.
    """
    from reconstruction.metrics import align_to_reference

    obj, ref = np.asarray(record.obj), np.asarray(reference.obj)
    support = None if record.support is None else np.asarray(record.support, dtype=bool)
    metrics = {k: _jsonable_number(v) for k, v in (record.metrics or {}).items()}

    def drawn(o: np.ndarray, s: np.ndarray | None) -> dict[str, Any]:
        shown = view(o, s) if view is not None else None
        return object_bundle(o if shown is None else shown.obj, s if shown is None else shown.support,
                             threshold=threshold, max_vertices=max_vertices,
                             voxel_size_m=voxel_size_m if shown is None else shown.voxel_size_m,
                             g_norm_per_m=g_norm_per_m, displacement=displacement, strain=strain,
                             frame=None if shown is None else shown.frame,
                             strain_geometry=None if shown is None else shown.strain_geometry)  # fmt: skip

    if obj.shape != ref.shape:
        text = f"not aligned: its grid {obj.shape} differs from the reference's {ref.shape}"
        return {"object": drawn(obj, support), "metrics": metrics,
                "alignment": {"aligned": False, "text": text}}  # fmt: skip
    aligned, moved, info = align_to_reference(obj, ref, support=support)
    shift = ", ".join(f"{v:+.2f}" for v in info["shift_px"][::-1])
    ramp = ", ".join(f"{v:+.3f}" for v in info["ramp_rad_per_px"][::-1])
    unit, axes = ("voxel", "x, y, z") if obj.ndim == 3 else ("pixel", "x, y")
    text = (f"aligned: shift ({shift}) {unit} ({axes}), {'twin flipped' if info['twin'] else 'no twin flip'}, "
            f"phase offset {info['phase_offset_rad']:+.2f} rad, ramp ({ramp}) rad/{unit}; "
            f"residual ‖a − ref‖/‖ref‖ {info['rel_error']:.3f}")  # fmt: skip
    return {"object": drawn(aligned.astype(np.complex64), moved), "metrics": metrics,
            "alignment": {"aligned": True, **{k: _jsonable_number(v) if not isinstance(v, list) else v
                                              for k, v in info.items()}, "text": text}}  # fmt: skip
