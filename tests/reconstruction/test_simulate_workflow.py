"""Simulated data sets on disk: shards, CXI export, cancellation, and the ``simulate`` command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from reconstruction.errors import Cancelled, ConfigError
from reconstruction.fourier import intensity_of
from reconstruction.progress import CancelToken
from reconstruction.simulate import (
    Recipe,
    SimulatedDataset,
    StoredDataset,
    generate_sample,
    sample_rng,
)
from reconstruction.simulate.detector import far_intensity
from reconstruction.simulate.workflow import simulate_dataset

ROOT = Path(__file__).resolve().parents[2]


def test_fast_far_intensity_follows_the_project_fourier_convention():
    obj = generate_sample(Recipe(kind="crystal", shape=16), sample_rng(0, 0))["object"]
    np.testing.assert_allclose(
        far_intensity(obj), intensity_of(obj), rtol=1e-4, atol=1e-6 * intensity_of(obj).max()
    )


def test_sharded_data_set_written_by_two_workers_reads_back_as_the_streamed_one(tmp_path):
    events = []
    summary = simulate_dataset(
        tmp_path / "set", n=5, shape=16, seed=4, workers=2, shard_size=2, progress=events.append
    )
    assert (
        summary["n"] == 5 and len(summary["files"]) == 3 and sum(summary["families"].values()) == 5
    )
    json.dumps(summary)
    assert [e.step for e in events] == list(range(6)) and events[-1].fraction == 1.0
    stored = StoredDataset(tmp_path / "set")
    streamed = SimulatedDataset(Recipe(shape=16), 5, seed=4)
    assert len(stored) == 5 and stored.seed == 4
    for i in range(5):
        a, b = stored[i], streamed[i]
        assert all(torch.equal(a[k], b[k]) for k in a)
    loader = torch.utils.data.DataLoader(stored, batch_size=2, num_workers=2)
    assert sum(len(batch["index"]) for batch in loader) == 5


def test_cxi_export_holds_the_pattern_and_a_truth_whose_far_field_matches_it(tmp_path):
    from reconstruction.io import load_data, read_result

    no_blur = Recipe(coherence_probability=0.0, readout_probability=0.0)
    summary = simulate_dataset(
        tmp_path / "one.h5",
        kind="superellipsoid",
        n=2,
        shape=16,
        photons=(1e9, 1e9),
        seed=1,
        cxi=True,
        recipe=no_blur,
    )
    assert len(summary["cxi_files"]) == 4
    stored = StoredDataset(summary["out_path"])
    data = load_data(summary["cxi_files"][2])
    truth = read_result(summary["cxi_files"][3])
    sample = stored.sample(1)
    np.testing.assert_array_equal(data.intensity, sample["intensity"])
    np.testing.assert_array_equal(data.mask, sample["mask"])
    np.testing.assert_allclose(np.abs(truth.obj), sample["amplitude"], atol=1e-6)
    expected = intensity_of(truth.obj)
    good = ~data.mask
    scale = data.intensity[good].sum() / expected[good].sum()
    bright = good & (expected * scale > 100)
    ratio = data.intensity[bright] / (expected[bright] * scale)
    assert abs(np.median(ratio) - 1) < 0.02  # the counts are the truth's far field plus noise


def test_cancelling_stops_the_simulation_and_leaves_no_partial_shard(tmp_path):
    token = CancelToken()

    def progress(event):
        if event.step >= 2:
            token.cancel()

    with pytest.raises(Cancelled):
        simulate_dataset(tmp_path / "set", n=6, shape=16, progress=progress, cancel=token)
    assert list((tmp_path / "set").glob("*.h5*")) == []


def test_a_folder_holding_other_shards_is_refused(tmp_path):
    simulate_dataset(tmp_path / "set", n=3, shape=16, shard_size=1)
    with pytest.raises(ConfigError, match="already holds other shards"):
        simulate_dataset(tmp_path / "set", n=1, shape=16)


def test_simulate_command_writes_the_file_and_prints_json(tmp_path):
    out = tmp_path / "two.h5"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "reconstruction",
            "simulate",
            "--kind",
            "crystal",
            "--n",
            "2",
            "--shape",
            "16",
            "--dims",
            "2",
            "--photons",
            "1e6:1e7",
            "--seed",
            "3",
            "--out",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["n"] == 2 and summary["recipe"]["dims"] == 2 and out.is_file()
    assert StoredDataset(out)[1]["intensity"].shape == (1, 16, 16)
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "reconstruction",
            "simulate",
            "--shape",
            "4",
            "--out",
            str(tmp_path / "x.h5"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error:")
