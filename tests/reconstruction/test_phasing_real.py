"""The real APS 34-ID-C gold rocking scan, prepared then phased, gives one compact crystal."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from reconstruction.io import read_result
from reconstruction.io.workflow import prepare_file
from reconstruction.phasing.workflow import phase_file

pytestmark = pytest.mark.slow


def test_the_aps_gold_scan_phases_to_one_compact_crystal(real_data, tmp_path):
    raw = real_data / "aps34idc_Au_S0054_rocking_scan.cxi"
    if not raw.exists():
        pytest.skip(f"{raw} is absent")
    prepared = tmp_path / "prepared.cxi"
    prepare_file(raw, prepared, shape=48, oversampling=3.0, threshold=2)
    summary = phase_file(prepared, tmp_path / "result.cxi", runs=2, seed=0, device="cpu")
    support = read_result(summary["out_path"]).support
    labels, count = ndimage.label(support)
    largest = np.bincount(labels.ravel())[1:].max()
    extent = [np.ptp(ax) + 1 for ax in np.nonzero(support)]
    assert largest > 0.9 * support.sum()  # one crystal, not speckle
    assert 0.002 < support.mean() < 0.1 and max(extent) < 0.6 * 48  # compact, well inside the box
    assert summary["metrics"]["chi2"] < 0.05
