"""Keep NumPy's BLAS on one thread, beside torch's and numba's OpenMP pools.

NumPy's OpenBLAS keeps its own worker threads, which spin for a while after each call. On a
small CPU they then compete with the OpenMP threads of torch (FFT, convolutions) and numba (the
fused kernels) that run next, and the other way round: measured on 2 cores, a 64³ ``np.dot``
right after a torch FFT took 3.5 ms instead of 0.05, a torch FFT right after it 4.6 ms instead
of 0.2, and a fused kernel 6.7 ms instead of 0.04. A refinement (ER**50 at 64³), whose metrics
use BLAS between engine calls, lost up to 60 ms per call this way. Our BLAS calls are dot
products and small matrices, which one thread does in microseconds, so the pool is limited to
one thread when the library is imported (``threadpoolctl``; the environment variable
``OPENBLAS_NUM_THREADS`` would only act before NumPy is first imported).
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)


def limit_blas_threads(threads: int = 1) -> int:
    """Limit the BLAS libraries loaded in this process (NumPy's OpenBLAS) to ``threads``;
    return how many BLAS libraries are loaded (0 when threadpoolctl is missing)."""
    # a BLAS loaded later (SciPy's own OpenBLAS) reads this when it starts
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(threads))
    import numpy  # noqa: F401 - load NumPy's BLAS so that it is found

    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl is pinned in requirements.txt
        logger.warning("threadpoolctl is missing: NumPy's BLAS threads may slow the engine")
        return 0
    blas = ThreadpoolController().select(user_api="blas")  # one scan of the loaded libraries
    blas.limit(limits=threads)
    return len(blas.lib_controllers)
