"""Where a job's result grid gets its real-space voxel size: the (prepared) data it was phased from.

The physics is ``reconstruction.io.voxel.voxel_size_m``; this module only finds the data file
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


def job_voxel_size_m(job: Job, shape: tuple[int, ...]) -> tuple[float | None, ...] | None:
    """Voxel size (m per axis, axis 0 first; None where unknown) of ``job``'s result grid
    ``shape``, or None when no data file on that grid can be read."""
    from reconstruction.errors import ReconstructionError
    from reconstruction.io.voxel import voxel_size_m
    from reconstruction.io.workflow import load_prepared

    for path in _data_files(job):
        try:
            data = load_prepared(path, shape=tuple(shape))
        except (ReconstructionError, OSError, ValueError):
            continue
        if tuple(data.shape) == tuple(shape):
            return voxel_size_m(data.metadata, tuple(shape))
    return None
