"""NumPy's BLAS stays on one thread once the library is imported (see reconstruction/threads.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from threadpoolctl import threadpool_info

import reconstruction  # noqa: F401 - the import limits the BLAS threads
from reconstruction.threads import limit_blas_threads


def test_numpys_blas_runs_on_one_thread_after_the_import():
    blas = [lib for lib in threadpool_info() if lib["user_api"] == "blas"]
    assert blas and all(lib["num_threads"] == 1 for lib in blas)
    assert limit_blas_threads() == len(blas)


def test_the_limit_holds_in_a_fresh_process_that_loaded_numpy_first():
    code = (
        "import numpy, threadpoolctl, reconstruction;"
        "print(max(l['num_threads'] for l in threadpoolctl.threadpool_info() if l['user_api'] == 'blas'))"
    )
    env_free = {"PATH": "/usr/bin:/bin"}  # no OPENBLAS_NUM_THREADS inherited from the test run
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env_free,
                         check=True, cwd=root)
    assert out.stdout.strip() == "1"
