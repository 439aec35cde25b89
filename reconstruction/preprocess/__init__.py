"""Preprocessing of diffraction data: peak, oversampling estimate, binning, centring, cropping."""

from reconstruction.preprocess.binning import bin_masked, crop_pad
from reconstruction.preprocess.oversampling import autocorrelation, estimate_oversampling
from reconstruction.preprocess.peak import find_peak, friedel_centre, resolve_peak_method
from reconstruction.preprocess.prepare import bin_factors, prepare

__all__ = [
    "autocorrelation",
    "bin_factors",
    "bin_masked",
    "crop_pad",
    "estimate_oversampling",
    "find_peak",
    "friedel_centre",
    "prepare",
    "resolve_peak_method",
]
