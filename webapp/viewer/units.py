"""Where a job's result grid gets its real-space voxel size and Bragg vector: the (prepared) data
it was phased from.

The physics is ``reconstruction.io.voxel`` (``voxel_size_m``, ``bragg_vector_norm_per_m``); this
module only finds the data file
(the ``prepared.cxi`` of the job, of its pipeline's predict step or of an ancestor, else the
job's dataset, prepared as the phasing prepared it) and checks that its grid is the result's.
"""

from __future__ import annotations

from pathlib import Path

from webapp.core.models import Job


def _data_files(job: Job) -> list[Path]:
    """Candidate data files of ``job``'s result grid, most specific first."""
    files = job.prepared_files()
    if job.dataset is not None and job.dataset.path.is_file():
        files.append(job.dataset.path)
    return files


def job_grid_scales(job: Job, shape: tuple[int, ...]) -> tuple[tuple[float | None, ...] | None, float | None]:
    """Voxel size (m per axis, axis 0 first; None where unknown) of ``job``'s result grid
    ``shape`` and |G| (1/m) of the measured reflection (None unless the data give the wavelength
    and the Bragg angle); (None, None) when no data file on that grid can be read."""
    from reconstruction.errors import ReconstructionError
    from reconstruction.io.voxel import bragg_vector_norm_per_m, voxel_size_m
    from reconstruction.io.workflow import load_prepared

    for path in _data_files(job):
        try:
            data = load_prepared(path, shape=tuple(shape))
        except (ReconstructionError, OSError, ValueError):
            continue
        if tuple(data.shape) == tuple(shape):
            return voxel_size_m(data.metadata, tuple(shape)), bragg_vector_norm_per_m(data.metadata)
    return None, None
