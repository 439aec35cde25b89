"""What this installation computes with: versions, device, CPU threads, fused kernels, FFT.

Answers a beamline scientist's first question about speed ("what is this machine using?") in
one place, for ``python -m reconstruction system`` and for bug reports.
"""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

import numpy as np
import torch

from reconstruction import __version__


def system_report() -> dict[str, Any]:
    """Versions, the compute device, CPU threads, whether training steps use bfloat16, whether
    the fused kernels and FFTW are available, and the FFT measured for each box so far (times
    in ms per forward + inverse)."""
    from reconstruction.device import autocast_bf16, pick_device
    from reconstruction.phasing import fftw, kernels
    from reconstruction.phasing.retrieve import choose_threads

    device = pick_device("auto")
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    try:
        import pyfftw

        pyfftw_version = pyfftw.__version__
    except ImportError:
        pyfftw_version = None
    return {
        "reconstruction": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "device": str(device),
        "gpus": gpus,
        "cpu_count": os.cpu_count(),
        "cpu_threads_for_phasing": choose_threads(torch.device("cpu")),
        "training_bf16_autocast": autocast_bf16(device),
        "fused_cpu_kernels": kernels.available(),
        "pyfftw": pyfftw_version,
        "fftw_enabled": fftw.available(),
        "cdi_fft": os.environ.get("CDI_FFT") or None,
        "fftw_wisdom": str(fftw.wisdom_path()),
        "fftw_wisdom_saved": fftw.wisdom_path().is_file(),
        "fft_choices": fftw.measured_choices(),
    }
