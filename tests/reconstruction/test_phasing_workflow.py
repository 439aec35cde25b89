"""phase_file, refine_file, metrics_file and the ``phase`` / ``metrics`` commands on tiny files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reconstruction.cli import main
from reconstruction.io import read_result, write_prepared
from reconstruction.io.types import DiffractionData
from reconstruction.metrics import fourier_errors, free_pixel_mask
from reconstruction.metrics.workflow import metrics_file
from reconstruction.phasing.workflow import phase_file, refine_file
from tests.reconstruction.phasing_objects import counts, faceted_crystal


@pytest.fixture
def prepared(tmp_path):
    """A prepared 24^3 CXI file of a faceted crystal (1e8 photons), and its truth (.npy)."""
    truth = faceted_crystal(24, 9)
    intensity = counts(truth, 1e8, seed=0)
    mask = np.zeros(intensity.shape, bool)
    mask[12, 12, 10:14] = True
    intensity[mask] = 0
    path = tmp_path / "prepared.cxi"
    write_prepared(path, DiffractionData(intensity=intensity, mask=mask))
    np.save(tmp_path / "truth.npy", truth)
    return path


def test_phase_file_writes_a_result_with_curves_metrics_and_provenance(prepared, tmp_path):
    events = []
    summary = phase_file(prepared, tmp_path / "out.cxi", algorithm="HIO**40,ER**20", cycles=2,
                         runs=2, seed=7, device="cpu", progress=events.append)
    record = read_result(summary["out_path"])
    assert record.algorithm == summary["algorithm"] == "(HIO**40,ER**20)**2"
    assert record.curves["chi2"].shape == (120,) and len(summary["curves"]["chi2"]) == 120
    assert record.provenance["seed"] == 7 and len(record.provenance["input_sha256"]) == 64
    assert record.provenance["program_version"]
    again = fourier_errors(record.obj, record.intensity, mask=record.mask,
                           free_mask=free_pixel_mask(record.mask, fraction=0.05, seed=7))
    assert np.isclose(record.metrics["chi2"], again["chi2"], rtol=1e-4)
    assert summary["iterations"] == 120 and len(summary["runs"]) == 2
    assert "prtf" in record.arrays
    assert events[-1].fraction == 1.0 and all(0 <= e.fraction <= 1 for e in events)
    json.dumps(summary)  # JSON-serialisable as it is


def test_refine_file_starts_from_a_result_keeps_its_curves_and_does_not_increase_chi2(
    prepared, tmp_path
):
    first = phase_file(
        prepared, tmp_path / "first.cxi", algorithm="HIO**60,ER**20", cycles=1, device="cpu"
    )
    refined = refine_file(prepared, tmp_path / "refined.cxi", initial_path=first["out_path"],
                          algorithm="ER**30", device="cpu")
    record = read_result(refined["out_path"])
    assert "initial_chi2" in record.curves and record.curves["chi2"].shape == (30,)
    assert refined["metrics"]["chi2"] <= refined["initial_metrics"]["chi2"] * (1 + 1e-6)
    assert record.algorithm == "HIO**60,ER**20+ER**30"
    assert record.provenance["initial_path"].endswith("first.cxi")


def test_metrics_file_reports_fourier_errors_and_the_comparison_with_a_truth(prepared, tmp_path):
    out = phase_file(prepared, tmp_path / "out.cxi", runs=2, device="cpu")
    report = metrics_file(out["out_path"], truth_path=tmp_path / "truth.npy")
    assert report["fourier"]["chi2"] == pytest.approx(out["metrics"]["chi2"], rel=1e-4)
    assert report["truth"]["rel_error"] < 0.3 and 0 < report["truth"]["ssim"] <= 1
    json.dumps(report)


def test_the_phase_and_metrics_commands_print_json_summaries(prepared, tmp_path, capsys):
    out = tmp_path / "cli.cxi"
    assert main(["phase", str(prepared), "--out", str(out), "--algorithm", "HIO**20,ER**10",
                 "--cycles", "1", "--device", "cpu", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["algorithm"] == "HIO**20,ER**10" and summary["metrics"]["chi2"] > 0
    assert main(["metrics", str(out), "--truth", str(tmp_path / "truth.npy"), "--json"]) == 0
    assert "rel_error" in json.loads(capsys.readouterr().out)["truth"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--algorithm", "ER**2x"], "position 5"),
        (["--runs", "1", "--keep", "2"], "keep"),
        (["--support", "no-such-support.npy"], "neither 'auto'"),
    ],
)
def test_the_phase_command_exits_2_with_one_line_for_bad_input(
    prepared, tmp_path, capsys, args, message
):
    out = str(tmp_path / "x.cxi")
    code = main(["phase", str(prepared), "--out", out, "--device", "cpu", *args])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "x.cxi").exists()


def test_the_phase_command_refuses_a_missing_file_with_exit_2(tmp_path, capsys):
    assert main(["phase", str(tmp_path / "absent.cxi"), "--out", str(tmp_path / "x.cxi")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
