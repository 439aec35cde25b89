"""The ``info`` and ``prepare`` commands, run as a user would (subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess:
    """Run ``python -m reconstruction ARGS`` from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "reconstruction", *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def test_info_prints_a_table_and_json(tmp_path, tiny_volume):
    np.save(tmp_path / "v.npy", tiny_volume.intensity)
    table = cli("info", tmp_path / "v.npy")
    assert table.returncode == 0, table.stderr
    assert "diffraction-3d" in table.stdout and "oversampling" in table.stdout
    as_json = cli("info", tmp_path / "v.npy", "--json")
    assert json.loads(as_json.stdout)["peak"] == [12, 12, 12]


def test_prepare_writes_the_file_and_prints_oversampling_before_and_after(tmp_path, tiny_volume):
    np.save(tmp_path / "v.npy", tiny_volume.intensity)
    out = cli(
        "prepare",
        tmp_path / "v.npy",
        "--out",
        tmp_path / "p.cxi",
        "--shape",
        "16",
        "--oversampling",
        "2",
    )
    assert out.returncode == 0, out.stderr
    assert "oversampling before" in out.stdout and "after" in out.stdout
    assert (tmp_path / "p.cxi").exists()


def test_info_and_prepare_work_on_every_real_file(tmp_path, real_data):
    files = {
        "aps34idc_Au_S0054_rocking_scan.cxi": "diffraction-3d",
        "esrf_id10_logo5mu_20sec.edf": "diffraction-2d",
        "PETRAIII_P25_Near_Field_Ptycho.cxi": "frame-stack",
        "bcdi_S11_Pt_pynx_modes_252_420_392.h5": "object",
    }
    for name, kind in files.items():
        out = cli("info", real_data / name, "--json")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["kind"] == kind
    aps = cli(
        "prepare",
        real_data / "aps34idc_Au_S0054_rocking_scan.cxi",
        "--out",
        tmp_path / "aps.cxi",
        "--json",
    )
    summary = json.loads(aps.stdout)
    assert summary["shape"] == [64, 64, 64] and summary["bin_factors"] == [2, 1, 1]
    logo = cli("prepare", real_data / "esrf_id10_logo5mu_20sec.edf", "--out", tmp_path / "logo.cxi")
    assert logo.returncode == 0 and "64 x 64" in logo.stdout
    ptycho = cli(
        "prepare", real_data / "PETRAIII_P25_Near_Field_Ptycho.cxi", "--out", tmp_path / "p.cxi"
    )
    assert ptycho.returncode == 2 and "Traceback" not in ptycho.stderr
    assert ptycho.stderr.startswith("error: ") and "not a Bragg CDI volume" in ptycho.stderr
    assert not (tmp_path / "p.cxi").exists()
    pynx = cli(
        "prepare", real_data / "bcdi_S11_Pt_pynx_modes_252_420_392.h5", "--out", tmp_path / "o.cxi"
    )
    assert pynx.returncode == 2 and "load_object" in pynx.stderr
