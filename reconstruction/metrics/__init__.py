"""Quality metrics: Fourier errors against data, comparison with a truth, PRTF, post-processing.

- ``fourier_errors(obj, intensity, mask=None, free_mask=None)``: chi2, chi2_free, LLK.
- ``free_pixel_mask(mask, fraction=0.05, seed=0)``: held-out pixels for the free values.
- ``compare_to_truth(obj, truth, *, support=None)``: SSIM, relative error, phase RMS (aligned);
  ``centrosymmetry(amplitude)``: overlap with its own inversion, 0-1 (a twin-averaged
  prediction is more centrosymmetric than its crystal).
- ``prtf(objs, intensity, mask)``: phase-retrieval transfer function of aligned runs;
  ``mode_decomposition(objs)``: the weight of the first mode of aligned runs (agreement).
- ``align_to``, ``align_to_reference`` (aligned object, moved support, what was done), ``remove_phase_ramp``, ``zero_phase_offset``, ``centre_object``, ``unwrap_phase``,
  ``displacement_field`` (u = −φ / |G| in m), ``strain_along_g`` (ε = Ĝ·∇u on any voxel basis).
"""

from reconstruction.metrics.alignment import (
    Alignment,
    align_to,
    align_to_reference,
    fourier_shift,
    twin_of,
)
from reconstruction.metrics.fourier_errors import fourier_errors, free_pixel_mask, poisson_llk
from reconstruction.metrics.modes import mode_decomposition
from reconstruction.metrics.postprocess import (
    centre_object,
    displacement_field,
    remove_phase_ramp,
    strain_along_g,
    unwrap_phase,
    zero_phase_offset,
)
from reconstruction.metrics.prtf import (
    object_pixel_size_m,
    prtf,
    radial_frequency,
    shell_average,
    spectral_weight,
)
from reconstruction.metrics.symmetry import centrosymmetry
from reconstruction.metrics.truth import compare_to_truth

__all__ = [
    "Alignment",
    "align_to",
    "align_to_reference",
    "centre_object",
    "centrosymmetry",
    "compare_to_truth",
    "displacement_field",
    "fourier_errors",
    "fourier_shift",
    "free_pixel_mask",
    "mode_decomposition",
    "object_pixel_size_m",
    "poisson_llk",
    "prtf",
    "radial_frequency",
    "remove_phase_ramp",
    "shell_average",
    "spectral_weight",
    "strain_along_g",
    "twin_of",
    "unwrap_phase",
    "zero_phase_offset",
]
