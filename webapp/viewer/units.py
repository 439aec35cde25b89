"""Where a job's result grid gets its real-space voxel size and Bragg vector: the (prepared) data
it was phased from.

The physics is ``reconstruction.io.voxel`` (``voxel_size_m``, ``bragg_vector_norm_per_m``); this
module only finds the data file
(the ``prepared.cxi`` of the job, of its pipeline's predict step or of an ancestor, else the
job's dataset, prepared as the phasing prepared it) and checks that its grid is the result's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webapp.core.models import Job


@dataclass
class GridScales:
    """Real-space scales of a result grid: voxel size (m per axis, None where unknown), |G|
    (1/m) and, for 3D Bragg data whose diffractometer geometry is known, the voxel steps in the
    lab frame (3×3, m; ``reconstruction.geometry``) with a description, else why not."""

    voxel_size_m: tuple[float | None, ...] | None = None
    g_norm_per_m: float | None = None
    lab_basis_m: Any = None
    lab_info: dict | None = None
    lab_note: str = "the data's diffractometer geometry is unknown"


def _data_files(job: Job) -> list[Path]:
    """Candidate data files of ``job``'s result grid, most specific first."""
    files = job.prepared_files()
    if job.dataset is not None and job.dataset.path.is_file():
        files.append(job.dataset.path)
    return files


def job_grid(job: Job, shape: tuple[int, ...]) -> GridScales:
    """``GridScales`` of ``job``'s result grid ``shape`` from the first data file on that grid
    (empty when none can be read)."""
    from reconstruction.errors import ReconstructionError
    from reconstruction.geometry.workflow import lab_basis_m
    from reconstruction.io.voxel import bragg_vector_norm_per_m, voxel_size_m
    from reconstruction.io.workflow import load_prepared

    for path in _data_files(job):
        try:
            data = load_prepared(path, shape=tuple(shape))
        except (ReconstructionError, OSError, ValueError):
            continue
        if tuple(data.shape) != tuple(shape):
            continue
        out = GridScales(voxel_size_m(data.metadata, tuple(shape)), bragg_vector_norm_per_m(data.metadata))
        if len(shape) == 3:
            try:
                out.lab_basis_m, out.lab_info = lab_basis_m(data.metadata, tuple(shape))
                out.lab_note = ""
            except ReconstructionError as exc:
                out.lab_note = str(exc)
        else:
            out.lab_note = "2D data have no rocking geometry"
        return out
    return GridScales(lab_note="no data file on this grid")
