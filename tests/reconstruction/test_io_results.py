"""Result and prepared files: exact round trips, atomic writes, reading PyNX / cohere objects."""

from __future__ import annotations

import json
import os

import h5py
import numpy as np
import pytest

from reconstruction import __version__
from reconstruction.errors import InvalidDataError, UnreadableFileError
from reconstruction.fourier import farfield
from reconstruction.io import (
    layout,
    load_data,
    load_object,
    read_result,
    write_prepared,
    write_result,
)
from reconstruction.io.types import ResultRecord


def _record(n=16) -> ResultRecord:
    rng = np.random.default_rng(1)
    obj = (rng.random((n, n, n)) * np.exp(1j * rng.random((n, n, n)))).astype(np.complex64)
    support = np.abs(obj) > 0.5
    return ResultRecord(
        obj=obj,
        support=support,
        intensity=(np.abs(farfield(obj)) ** 2).astype(np.float32),
        mask=rng.random((n, n, n)) > 0.95,
        algorithm="(ER**20,HIO**160,ER**20)**3",
        config={
            "n_cycles": 3,
            "seed": 7,
            "shrinkwrap": {"sigma": 1.0, "threshold": 0.1},
            "runs": [1, 2],
        },
        curves={"chi2": np.linspace(1, 0.01, 600), "llk": np.geomspace(10, 1, 600)},
        metrics={"chi2": 0.0123, "chi2_free": 0.0151, "llk": 1.5, "converged": True, "note": None},
        timings={"phase": 0.42, "total": 0.5},
        command="python -m reconstruction phase in.cxi --out out.cxi",
        provenance={"input_sha256": "ab" * 32, "seed": 7, "model_version": "none", "job_id": 12},
        arrays={"prtf": np.linspace(1, 0, 8).astype(np.float32), "prtf_freq": np.arange(8.0)},
    )


def test_a_result_file_round_trips_every_field(tmp_path):
    record = _record()
    path = tmp_path / "result.cxi"
    write_result(path, record)
    back = read_result(path)
    np.testing.assert_array_equal(back.obj, record.obj)
    assert back.obj.dtype == np.complex64
    np.testing.assert_array_equal(back.support, record.support)
    np.testing.assert_array_equal(back.intensity, record.intensity)
    np.testing.assert_array_equal(back.mask, record.mask)
    assert back.algorithm == record.algorithm and back.command == record.command
    assert back.config == record.config and back.timings == record.timings
    assert back.metrics == record.metrics
    assert set(back.curves) == {"chi2", "llk"}
    for name in record.curves:
        np.testing.assert_array_equal(back.curves[name], record.curves[name])
    for name in record.arrays:
        np.testing.assert_array_equal(back.arrays[name], record.arrays[name])
    assert back.provenance == {"program_version": __version__, **record.provenance}


def test_a_result_file_follows_the_cxi_layout(tmp_path):
    path = tmp_path / "result.cxi"
    write_result(path, _record())
    with h5py.File(path, "r") as f:
        assert f["cxi_version"][()] == 160
        assert f.get(layout.DATA_LINK, getlink=True).path == layout.IMAGE_DATA
        assert f[layout.IMAGE_DATA].dtype == np.complex64
        assert f[f"{layout.IMAGE}/is_fft_shifted"][()] == 0
        assert json.loads(f[f"{layout.PROCESS}/configuration"][()])["seed"] == 7
        assert f[f"{layout.RESULT_METRICS}/chi2"][()] == pytest.approx(0.0123)
        assert f[layout.ENTRY].attrs["input_sha256"] == "ab" * 32
        assert f[layout.ENTRY].attrs["program_version"] == __version__


def test_write_result_refuses_mismatched_shapes_and_writes_nothing(tmp_path):
    record = _record()
    record.support = record.support[:8]
    with pytest.raises(InvalidDataError, match="support"):
        write_result(tmp_path / "r.cxi", record)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_the_previous_file_untouched_and_no_temp_file(tmp_path):
    path = tmp_path / "r.cxi"
    write_result(path, _record())
    before = path.read_bytes()
    record = _record()
    record.arrays = {"bad": np.array([object()], dtype=object)}  # h5py cannot store it
    with pytest.raises(TypeError):
        write_result(path, record)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.cxi"]


def test_read_result_refuses_a_file_that_is_not_a_result(tmp_path):
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f["data"] = np.ones((4, 4))
    with pytest.raises(UnreadableFileError, match="not a result file"):
        read_result(path)


def test_a_prepared_file_round_trips_through_load_data(tmp_path, tiny_volume):
    tiny_volume.provenance.add_step("prepare", shape=[24, 24, 24])
    tiny_volume.provenance.warnings.append("a warning")
    tiny_volume.metadata.extra = {"oversampling_before": [4.0, 4.0, 4.0], "bin_factors": [1, 1, 1]}
    path = tmp_path / "prepared.cxi"
    write_prepared(path, tiny_volume)
    back = load_data(path)
    np.testing.assert_array_equal(back.intensity, tiny_volume.intensity)
    np.testing.assert_array_equal(back.mask, tiny_volume.mask)
    m, b = tiny_volume.metadata, back.metadata
    assert (b.distance_m, b.x_pixel_size_m, b.y_pixel_size_m, b.energy_J, b.wavelength_m) == (
        m.distance_m,
        m.x_pixel_size_m,
        m.y_pixel_size_m,
        m.energy_J,
        m.wavelength_m,
    )
    assert b.axes == m.axes and b.rocking_axis == m.rocking_axis and b.extra == m.extra
    np.testing.assert_array_equal(b.rocking_angles_deg, m.rocking_angles_deg)
    p, q = tiny_volume.provenance, back.provenance
    assert (q.source_path, q.source_sha256, q.source_format, q.steps, q.warnings) == (
        p.source_path,
        p.source_sha256,
        p.source_format,
        p.steps,
        p.warnings,
    )
    assert q.loaded_from == str(path.resolve()) and len(q.loaded_sha256) == 64


def test_a_2d_prepared_file_without_metadata_round_trips(tmp_path, tiny_pattern):
    path = tmp_path / "p2.cxi"
    write_prepared(path, tiny_pattern)
    back = load_data(path)
    np.testing.assert_array_equal(back.intensity, tiny_pattern.intensity)
    assert back.metadata.distance_m is None and back.metadata.axes is None


def test_load_data_on_a_result_file_returns_its_prepared_intensity(tmp_path):
    record = _record()
    write_result(tmp_path / "r.cxi", record)
    d = load_data(tmp_path / "r.cxi")
    np.testing.assert_array_equal(d.intensity, record.intensity)
    np.testing.assert_array_equal(d.mask, record.mask)


def test_load_object_reads_our_result_file(tmp_path):
    record = _record()
    write_result(tmp_path / "r.cxi", record)
    o = load_object(tmp_path / "r.cxi")
    np.testing.assert_array_equal(o.obj, record.obj)
    np.testing.assert_array_equal(o.support, record.support)
    assert o.provenance.source_format == "result-cxi"


def test_load_object_reads_a_pynx_modes_file_and_keeps_the_first_mode(tmp_path):
    modes = (np.ones((2, 8, 10, 12)) * np.array([1.0, 0.1])[:, None, None, None]).astype(
        np.complex64
    )
    path = tmp_path / "modes.h5"
    with h5py.File(path, "w") as f:
        f["entry_1/image_1/data"] = modes
        f["entry_1/data_1/data"] = h5py.SoftLink("/entry_1/image_1/data")
        f["entry_1/data_2/data"] = np.array([0.9, 0.1], np.float32)
        f["entry_1/image_1/process_1/command"] = "pynx-cdi-analysis.py modes"
    o = load_object(path)
    assert o.obj.shape == (8, 10, 12) and np.allclose(o.obj, 1.0)
    np.testing.assert_allclose(o.modes_weights, [0.9, 0.1])
    assert o.metadata.extra["command"] == "pynx-cdi-analysis.py modes"
    assert o.provenance.source_format == "pynx-result"


def test_load_object_reads_a_cohere_npy_with_its_sibling_support(tmp_path):
    obj = np.zeros((12, 12, 12), np.complex64)
    obj[4:8, 4:8, 4:8] = np.exp(0.3j)
    np.save(tmp_path / "image.npy", obj)
    np.save(tmp_path / "support.npy", (np.abs(obj) > 0).astype(np.int8))
    o = load_object(tmp_path / "image.npy")
    np.testing.assert_array_equal(o.obj, obj)
    assert o.support.sum() == 64 and o.provenance.source_format == "cohere-npy"


def test_the_real_pynx_pt_result_is_a_complex_object(real_data):
    o = load_object(real_data / "bcdi_S11_Pt_pynx_modes_252_420_392.h5")
    assert o.obj.shape == (86, 118, 122) and o.obj.dtype == np.complex64
    assert o.modes_weights.shape == (10,) and o.modes_weights[0] == pytest.approx(0.993, abs=1e-3)
    amplitude = np.abs(o.obj)
    assert amplitude.max() > 10 * np.median(amplitude)  # a compact crystal in a larger box
    assert os.path.basename(o.provenance.source_path) == "bcdi_S11_Pt_pynx_modes_252_420_392.h5"
