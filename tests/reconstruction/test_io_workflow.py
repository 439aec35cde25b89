"""The io workflows (inspect_file, prepare_file, load_prepared) on tiny files and on real data."""

from __future__ import annotations

import numpy as np
import pytest

from reconstruction.errors import Cancelled, NotAVolumeError
from reconstruction.io import load_data, write_result
from reconstruction.io.types import ResultRecord
from reconstruction.io.workflow import inspect_file, load_prepared, prepare_file
from reconstruction.preprocess import friedel_centre
from reconstruction.progress import CancelToken


def test_inspect_file_describes_a_volume_with_peak_and_oversampling(tmp_path, tiny_volume):
    np.save(tmp_path / "v.npy", tiny_volume.intensity)
    info = inspect_file(tmp_path / "v.npy")
    assert info["kind"] == "diffraction-3d" and info["shape"] == [24, 24, 24]
    assert info["peak"] == [12, 12, 12]
    assert info["oversampling"] == pytest.approx([4.0] * 3, rel=0.2)
    assert info["format"] == "npy" and len(info["sha256"]) == 64 and info["usable_for_phasing"]


def test_inspect_file_describes_a_frame_stack_instead_of_failing(tmp_path, write_cxi, tiny_volume):
    path = write_cxi(tmp_path / "s.cxi", tiny_volume.intensity, translation=np.zeros((24, 3)))
    info = inspect_file(path)
    assert (
        info["kind"] == "frame-stack" and info["n_frames"] == 24 and not info["usable_for_phasing"]
    )
    assert "translation" in info["frame_stack_reason"]


def test_inspect_file_describes_a_result_file_as_an_object(tmp_path, tiny_pattern):
    obj = np.ones((32, 32), np.complex64)
    write_result(
        tmp_path / "r.cxi",
        ResultRecord(
            obj=obj,
            support=np.ones((32, 32), bool),
            intensity=tiny_pattern.intensity,
            mask=tiny_pattern.mask,
        ),
    )
    info = inspect_file(tmp_path / "r.cxi")
    assert info["kind"] == "object" and info["support_fraction"] == 1.0


def test_prepare_file_writes_a_centred_file_and_reports_oversampling(tmp_path, tiny_volume):
    np.save(tmp_path / "v.npy", tiny_volume.intensity)
    events = []
    summary = prepare_file(
        tmp_path / "v.npy", tmp_path / "p.cxi", shape=16, oversampling=2.0, progress=events.append
    )
    assert summary["shape"] == [16, 16, 16]
    assert summary["bin_factors"] == [2, 2, 2]
    assert len(summary["oversampling_before"]) == 3 and len(summary["oversampling_after"]) == 3
    assert events[0].fraction == 0.0 and events[-1].fraction == 1.0
    data = load_data(tmp_path / "p.cxi")
    assert np.unravel_index(np.argmax(data.intensity), data.shape) == (8, 8, 8)
    assert data.provenance.source_sha256 == summary["input_sha256"]


def test_prepare_file_honours_cancellation_and_writes_nothing(tmp_path, tiny_volume):
    np.save(tmp_path / "v.npy", tiny_volume.intensity)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        prepare_file(tmp_path / "v.npy", tmp_path / "p.cxi", cancel=token)
    assert not (tmp_path / "p.cxi").exists()


def test_load_prepared_returns_a_prepared_file_as_is_and_prepares_a_raw_one(tmp_path, tiny_volume):
    np.save(tmp_path / "v.npy", tiny_volume.intensity)
    raw = load_prepared(tmp_path / "v.npy", shape=16)
    assert raw.shape == (16, 16, 16)
    prepare_file(tmp_path / "v.npy", tmp_path / "p.cxi", shape=20)
    again = load_prepared(tmp_path / "p.cxi", shape=16)
    assert again.shape == (20, 20, 20) and again.provenance.loaded_from


# ------------------------------------------------------------------ real measured data
def test_the_aps_rocking_scan_becomes_a_centred_64_cube(tmp_path, real_data):
    src = real_data / "aps34idc_Au_S0054_rocking_scan.cxi"
    info = inspect_file(src)
    assert info["kind"] == "diffraction-3d" and info["shape"] == [201, 256, 256]
    assert info["metadata"]["rocking_axis"] == "theta" and info["metadata"]["distance_m"] == 0.5
    summary = prepare_file(src, tmp_path / "aps.cxi")
    assert summary["shape"] == [64, 64, 64]
    assert summary["oversampling_before"][0] > 6 and summary["bin_factors"][0] == 2
    assert all(2.0 <= v <= 6.0 for v in summary["oversampling_after"])
    data = load_prepared(tmp_path / "aps.cxi")
    assert np.unravel_index(np.argmax(data.intensity), data.shape) == (32, 32, 32)
    assert data.metadata.rocking_angles_deg.shape == (64,)
    steps = [s["step"] for s in data.provenance.steps]
    assert "subtract_dark" in steps and "divide_flat" in steps and "bin" in steps


def test_the_esrf_logo_pattern_becomes_a_centred_2d_array_with_masked_zeros(tmp_path, real_data):
    src = real_data / "esrf_id10_logo5mu_20sec.edf"
    info = inspect_file(src)
    assert info["kind"] == "diffraction-2d" and info["mask"]["masked"] == 21687
    summary = prepare_file(src, tmp_path / "logo.cxi", shape=128)
    data = load_data(tmp_path / "logo.cxi")
    assert data.shape == (128, 128) and summary["masked_fraction"] > 0
    # the beamstop hides the zero frequency: the centre is Friedel's, not the brightest pixel
    assert [st["method"] for st in data.provenance.steps if st["step"] == "find_peak"] == ["friedel"]
    assert friedel_centre(data.intensity, data.mask) == (64, 64)
    assert np.unravel_index(np.argmax(data.intensity), data.shape) != (64, 64)


def test_the_petra_ptychography_file_is_a_frame_stack_that_cannot_be_prepared(tmp_path, real_data):
    src = real_data / "PETRAIII_P25_Near_Field_Ptycho.cxi"
    info = inspect_file(src)
    assert (
        info["kind"] == "frame-stack"
        and info["n_frames"] == 200
        and info["frame_shape"] == [100, 100]
    )
    assert info["mask"]["masked"] == 5 * 200
    assert info["metadata"]["distance_m"] == pytest.approx(1.12)
    with pytest.raises(NotAVolumeError, match="stack of 2D frames"):
        prepare_file(src, tmp_path / "p.cxi")
    assert not (tmp_path / "p.cxi").exists()


def test_the_pynx_pt_result_is_described_as_an_object(real_data):
    info = inspect_file(real_data / "bcdi_S11_Pt_pynx_modes_252_420_392.h5")
    assert (
        info["kind"] == "object"
        and info["shape"] == [86, 118, 122]
        and info["dtype"] == "complex64"
    )
