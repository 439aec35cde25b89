"""Coherent diffraction imaging phase retrieval: data layer, phasing engine, simulation, network.

A pure numerical library (NumPy, PyTorch, h5py): it never imports Django or Celery.
"""

__version__ = "0.1.0"

from reconstruction.threads import limit_blas_threads

limit_blas_threads()  # NumPy's BLAS threads would stall torch's and numba's: see threads.py
