"""Support files (ESRF's 0/1 EDF, .npy, objects) and the grid a raw pattern is phased on."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reconstruction.cli import main
from reconstruction.errors import ConfigError, InvalidDataError, ReconstructionError
from reconstruction.io import load_data, read_result
from reconstruction.io.supports import load_support, support_from_array
from reconstruction.io.workflow import prepare_file
from reconstruction.phasing.workflow import phase_file, refine_file
from reconstruction.preprocess.prepare import fft_size, full_shape

LOGO = "esrf_id10_logo5mu_20sec.edf"
LOGO_SUPPORT = "esrf_id10_logo5mu_20sec_support.edf"


@pytest.fixture
def pattern_file(tmp_path, ball_object):
    """Factory: ``pattern_file(ndim, n)`` writes a raw .npy of a ball's photon counts in an
    n-pixel box, oversampled about 3.2 times (so preparing it does not bin)."""

    def write(ndim: int, n: int):
        from reconstruction.fourier import intensity_of

        intensity = intensity_of(ball_object(n, n / 3.2, ndim))
        counts = np.random.default_rng(0).poisson(intensity * 1e8 / intensity.sum())
        path = tmp_path / f"raw{ndim}d_{n}.npy"
        np.save(path, counts.astype(np.float32))
        return path

    return write


def test_the_esrf_support_edf_is_read_as_its_non_zero_pixels(real_data):
    support, how = load_support(real_data / LOGO_SUPPORT)
    assert support.shape == (512, 512) and support.dtype == bool
    assert support.sum() == 7577 and "non-zero pixels" in how


def test_support_arrays_binary_amplitude_complex_and_bad_ones():
    binary = np.zeros((16, 16), np.uint8)
    binary[4:8, 5:9] = 7
    assert support_from_array(binary)[0].sum() == 16
    amplitude = np.zeros((16, 16))
    amplitude[4:8, 4:8] = 1.0
    amplitude[2, 2] = 0.05  # below 10 % of the maximum: outside
    amplitude[3, 3] = 0.5
    assert support_from_array(amplitude)[0].sum() == 17
    obj = amplitude * np.exp(1j * 2.0)
    assert support_from_array(obj[None])[0].shape == (16, 16)
    with pytest.raises(InvalidDataError, match="empty"):
        support_from_array(np.zeros((8, 8)))
    with pytest.raises(InvalidDataError, match="whole box"):
        support_from_array(np.ones((8, 8)))
    with pytest.raises(InvalidDataError, match="NaN"):
        support_from_array(np.full((8, 8), np.nan))
    with pytest.raises(InvalidDataError, match="2D or 3D"):
        support_from_array(np.ones(8))


def test_fft_lengths_and_the_full_shape():
    assert [fft_size(n) for n in (7, 14, 100, 101, 202, 256)] == [8, 16, 100, 108, 216, 256]
    assert full_shape((201, 256, 256), (2, 1, 1)) == (108, 256, 256)
    assert full_shape((600, 600, 600), (1, 1, 1)) == (256, 256, 256)  # the 3D cap
    assert full_shape((512, 500), (1, 1)) == (512, 500)


def test_a_raw_frame_support_phases_the_logo_at_full_resolution_and_refines_on_that_grid(
    real_data, tmp_path
):
    summary = phase_file(
        real_data / LOGO,
        tmp_path / "logo.cxi",
        algorithm="HIO**100,ER**30",
        cycles=1,
        support=real_data / LOGO_SUPPORT,
        device="cpu",
        prepared_out=tmp_path / "prepared.cxi",
    )
    assert summary["shape"] == [512, 512] and summary["support_source"].endswith(LOGO_SUPPORT)
    assert summary["metrics"]["chi2"] < 0.02
    record = read_result(tmp_path / "logo.cxi")
    assert record.support.sum() == 7577  # no shrink-wrap with a given support
    assert record.provenance["support_path"].endswith(LOGO_SUPPORT)
    assert record.provenance["prepare_oversampling"] == "none"
    assert load_data(tmp_path / "prepared.cxi").intensity.shape == (512, 512)
    refined = refine_file(
        real_data / LOGO,
        tmp_path / "refined.cxi",
        initial_path=tmp_path / "logo.cxi",
        algorithm="ER**5",
        device="cpu",
    )
    assert refined["metrics"]["chi2"] <= summary["metrics"]["chi2"] * 1.001


def test_the_logo_centred_on_its_friedel_centre_has_a_flat_phase_and_phases_with_positivity(
    real_data, tmp_path
):
    """Behind the beamstop the brightest pixel is 9 rows off the zero frequency; centred there,
    the object carried a 0.11 rad/pixel ramp and positivity failed (chi2 0.23)."""
    from reconstruction.metrics.alignment import fit_phase_ramp

    for positivity in (False, True):
        summary = phase_file(
            real_data / LOGO, tmp_path / f"logo{positivity}.cxi", algorithm="HIO**100,ER**30",
            cycles=1, support=real_data / LOGO_SUPPORT, positivity=positivity, device="cpu",
        )
        assert summary["metrics"]["chi2"] < 0.02, positivity
    free = read_result(tmp_path / "logoFalse.cxi").obj
    assert np.all(np.abs(fit_phase_ramp(free, np.abs(free))) < 0.01)  # rad per pixel
    positive = read_result(tmp_path / "logoTrue.cxi")
    assert np.all(positive.obj.real >= 0) and not np.any(positive.obj.imag)


def test_a_2d_raw_pattern_is_phased_whole_by_default_and_a_3d_one_on_the_network_box(
    tmp_path, pattern_file
):
    out = phase_file(
        pattern_file(2, 96), tmp_path / "p2.cxi", algorithm="ER**5", cycles=1, device="cpu"
    )
    assert out["shape"] == [96, 96]
    out = phase_file(
        pattern_file(3, 80), tmp_path / "p3.cxi", algorithm="ER**2", cycles=1, device="cpu"
    )
    assert out["shape"] == [64, 64, 64]
    out = phase_file(
        pattern_file(2, 96),
        tmp_path / "p4.cxi",
        algorithm="ER**2",
        cycles=1,
        device="cpu",
        shape=32,
    )
    assert out["shape"] == [32, 32]


def test_support_files_of_the_wrong_grid_or_absent_are_refused_clearly(real_data, tmp_path):
    prepared = prepare_file(real_data / LOGO, tmp_path / "prepared.cxi", shape=64)["out_path"]
    with pytest.raises(InvalidDataError, match=r"\(512, 512\).*\(64, 64\)"):
        phase_file(prepared, tmp_path / "x.cxi", support=real_data / LOGO_SUPPORT, device="cpu")
    with pytest.raises(InvalidDataError, match=r"\(512, 512\).*\(128, 128\)"):  # an explicit grid wins
        phase_file(real_data / LOGO, tmp_path / "x.cxi", support=real_data / LOGO_SUPPORT, shape=128,
                   device="cpu")
    with pytest.raises(ReconstructionError, match="neither a 0/1 support image"):
        load_support(real_data / "PETRAIII_P25_Near_Field_Ptycho.cxi")
    with pytest.raises(ConfigError, match="neither 'auto'"):
        phase_file(prepared, tmp_path / "x.cxi", support=tmp_path / "absent.edf", device="cpu")


def test_the_cli_takes_shape_full_and_refuses_a_tiny_one(tmp_path, pattern_file, capsys):
    assert (
        main(
            [
                "prepare",
                str(pattern_file(2, 96)),
                "--out",
                str(tmp_path / "p.cxi"),
                "--shape",
                "full",
                "--json",
            ]
        )
        == 0
    )
    assert '"shape": [\n    96,\n    96\n  ]' in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["phase", str(pattern_file(2, 96)), "--out", str(tmp_path / "x.cxi"), "--shape", "4"])
    assert exc.value.code == 2
    assert "at least 8 pixels" in capsys.readouterr().err


def test_metrics_against_the_raw_file_use_the_results_grid_and_binning(real_data, tmp_path, capsys):
    out = tmp_path / "logo.cxi"
    summary = phase_file(
        real_data / LOGO,
        out,
        algorithm="HIO**20,ER**10",
        cycles=1,
        support=real_data / LOGO_SUPPORT,
        device="cpu",
    )
    assert main(["metrics", str(out), "--data", str(real_data / LOGO), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["fourier"]["chi2"] == pytest.approx(summary["metrics"]["chi2"], rel=1e-4)
