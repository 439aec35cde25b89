"""Bad and hostile input: each case is refused (or repaired and reported) with a clear message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from reconstruction.errors import (
    DataTooLargeError,
    HostileFileError,
    InvalidDataError,
    ReconstructionError,
    UnreadableFileError,
)
from reconstruction.io import load_data, load_object

ROOT = Path(__file__).resolve().parents[2]


def _h5(path, **datasets):
    with h5py.File(path, "w") as f:
        for name, value in datasets.items():
            f[name] = value
    return path


def _counts(shape=(16, 16)):
    return np.random.default_rng(0).poisson(20, shape).astype(np.float32) + 1


# ------------------------------------------------------------------ not a file we can read
def test_a_text_file_named_h5_is_not_hdf5(tmp_path):
    path = tmp_path / "fake.h5"
    path.write_text("hello, I am not HDF5\n")
    with pytest.raises(UnreadableFileError, match="not HDF5"):
        load_data(path)


def test_an_unknown_format_lists_the_formats_we_read(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(UnreadableFileError, match="CXI / HDF5 / NeXus"):
        load_data(path)


def test_an_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.cxi"
    path.write_bytes(b"")
    with pytest.raises(UnreadableFileError, match="empty"):
        load_data(path)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(UnreadableFileError, match="no such file"):
        load_data(tmp_path / "nope.cxi")


def test_a_truncated_hdf5_file_is_refused(tmp_path):
    path = _h5(
        tmp_path / "full.h5", data=np.random.default_rng(0).random((64, 64, 64)).astype(np.float32)
    )
    blob = path.read_bytes()
    for cut in (len(blob) // 2, 4096):
        truncated = tmp_path / f"cut{cut}.h5"
        truncated.write_bytes(blob[:cut])
        with pytest.raises(UnreadableFileError):
            load_data(truncated)


# ------------------------------------------------------------------ pointing outside the file
def test_an_external_link_is_refused_and_never_followed(tmp_path):
    _h5(tmp_path / "target.h5", data=_counts())
    path = tmp_path / "master.h5"
    with h5py.File(path, "w") as f:
        f["entry/data"] = h5py.ExternalLink("target.h5", "/data")
    with pytest.raises(HostileFileError, match="external link to target.h5"):
        load_data(path)
    with pytest.raises(HostileFileError):
        load_data(path, dataset_path="/entry/data")


def test_external_raw_storage_is_refused(tmp_path):
    raw = tmp_path / "raw.bin"
    _counts().tofile(raw)
    path = tmp_path / "ext.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset(
            "data", shape=(16, 16), dtype=np.float32, external=[(str(raw), 0, 16 * 16 * 4)]
        )
    with pytest.raises(HostileFileError, match="external raw files"):
        load_data(path)


def test_a_virtual_dataset_reading_another_file_is_refused(tmp_path):
    _h5(tmp_path / "src.h5", data=_counts())
    layout = h5py.VirtualLayout(shape=(16, 16), dtype=np.float32)
    layout[:] = h5py.VirtualSource(str(tmp_path / "src.h5"), "data", shape=(16, 16))
    path = tmp_path / "vds.h5"
    with h5py.File(path, "w") as f:
        f.create_virtual_dataset("data", layout)
    with pytest.raises(HostileFileError, match="virtual dataset"):
        load_data(path)


def test_a_virtual_dataset_inside_the_same_file_is_allowed(tmp_path):
    path = tmp_path / "vds_local.h5"
    with h5py.File(path, "w") as f:
        f["raw"] = _counts((4, 16, 16))
        layout = h5py.VirtualLayout(shape=(4, 16, 16), dtype=np.float32)
        layout[:] = h5py.VirtualSource(".", "raw", shape=(4, 16, 16))
        f.create_virtual_dataset("virtual", layout)
    np.testing.assert_array_equal(
        load_data(path, dataset_path="/virtual").intensity, _counts((4, 16, 16))
    )


def test_hostile_result_files_are_refused_by_load_object_too(tmp_path):
    path = tmp_path / "obj.h5"
    with h5py.File(path, "w") as f:
        f["entry_1/image_1/data"] = h5py.ExternalLink("/etc/passwd", "/x")
    with pytest.raises(HostileFileError):
        load_object(path)


# ------------------------------------------------------------------ size limits
def test_a_declared_size_above_the_limit_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset(
            "data",
            shape=(4096, 4096, 4096),
            dtype=np.float32,
            chunks=(1, 64, 64),
            compression="gzip",
        )
    assert path.stat().st_size < 100_000
    with pytest.raises(DataTooLargeError, match="256.*GiB|MiB"):
        load_data(path)


def test_the_size_limit_comes_from_the_argument_or_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "a.npy"
    np.save(path, _counts((32, 32)))
    with pytest.raises(DataTooLargeError, match="limit"):
        load_data(path, max_bytes=1000)
    monkeypatch.setenv("CDI_MAX_DATASET_BYTES", "1000")
    with pytest.raises(DataTooLargeError):
        load_data(path)
    monkeypatch.setenv("CDI_MAX_DATASET_BYTES", "1e9")
    assert load_data(path).shape == (32, 32)


def test_an_npy_header_declaring_a_huge_array_is_refused_without_reading(tmp_path):
    path = tmp_path / "bomb.npy"
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "<f4", "fortran_order": False, "shape": (100_000, 100_000, 100)}
        )
    with pytest.raises(DataTooLargeError):
        load_data(path)


# ------------------------------------------------------------------ shapes and values
@pytest.mark.parametrize(
    "shape, message",
    [
        ((5,), "got shape \\(5,\\)"),
        ((2, 2, 8, 8, 8), "2D or 3D"),
        ((3, 8, 16, 16), "leading axis of length 1"),
    ],
)
def test_arrays_of_the_wrong_dimension_are_refused(tmp_path, shape, message):
    np.save(tmp_path / "a.npy", np.ones(shape, np.float32))
    with pytest.raises(InvalidDataError, match=message):
        load_data(tmp_path / "a.npy")


def test_complex_intensities_are_refused(tmp_path):
    np.save(tmp_path / "c.npy", np.ones((16, 16), np.complex64))
    with pytest.raises(InvalidDataError, match="complex"):
        load_data(tmp_path / "c.npy")


def test_uint32_sentinels_are_masked_and_reported(tmp_path):
    data = np.full((16, 16), 7, np.uint32)
    data[0, :3] = 2**32 - 1  # -1 stored unsigned: a gap
    data[1, 0] = 2**31 + 5  # overflowed / saturation marker
    np.save(tmp_path / "u.npy", data)
    d = load_data(tmp_path / "u.npy")
    assert d.mask.sum() == 4 and d.intensity.max() == 7
    assert any("masked 4" in w for w in d.provenance.warnings)


def test_negative_integers_are_sentinels_and_masked(tmp_path):
    data = np.full((16, 16), 3, np.int32)
    data[2, 2] = -1
    data[3, 3] = -2
    np.save(tmp_path / "i.npy", data)
    d = load_data(tmp_path / "i.npy")
    assert d.mask.sum() == 2 and d.intensity.min() == 0


def test_nan_and_inf_are_masked_and_counted(tmp_path):
    data = _counts()
    data[0, 0] = np.nan
    data[0, 1] = np.inf
    data[0, 2] = -np.inf
    np.save(tmp_path / "n.npy", data)
    d = load_data(tmp_path / "n.npy")
    assert d.mask.sum() == 3 and np.isfinite(d.intensity).all()
    assert "masked 3 NaN/Inf pixels" in d.provenance.warnings


def test_negative_floats_are_clipped_to_zero_and_reported(tmp_path):
    data = np.round(_counts())
    data[4, 4] = -3.0
    np.save(tmp_path / "neg.npy", data)
    d = load_data(tmp_path / "neg.npy")
    assert d.intensity.min() == 0 and not d.mask[4, 4]
    assert any("clipped 1 negative" in w for w in d.provenance.warnings)


def test_all_zero_data_is_refused(tmp_path):
    np.save(tmp_path / "z.npy", np.zeros((16, 16), np.float32))
    with pytest.raises(InvalidDataError, match="no positive"):
        load_data(tmp_path / "z.npy")


def test_a_mask_of_the_wrong_shape_is_refused(tmp_path, write_cxi):
    path = write_cxi(tmp_path / "m.cxi", _counts((4, 16, 16)), mask=np.zeros((8, 8), np.uint32))
    with pytest.raises(InvalidDataError, match="mask has shape \\(8, 8\\)"):
        load_data(path)


# ------------------------------------------------------------------ EDF and NumPy specifics
def test_a_corrupt_edf_header_is_refused(tmp_path):
    bad = tmp_path / "bad.edf"
    bad.write_bytes(b"{\nDataType = FloatValue ;\nDim_1 = 16 ;\n" + b" " * 600)
    with pytest.raises(UnreadableFileError, match="corrupt EDF header"):
        load_data(bad)
    odd = tmp_path / "odd.edf"
    odd.write_bytes(b"{\nDataType = FloatValue ;\nDim_1 = 4 ;\nDim_2 = 4 ;\n}\n" + b"\0" * 64)
    with pytest.raises(UnreadableFileError, match="multiple of 512"):
        load_data(odd)
    weird = tmp_path / "weird.edf"
    head = b"{\nDataType = Quaternion ;\nDim_1 = 4 ;\nDim_2 = 4 ;\n"
    weird.write_bytes(head + b" " * (510 - len(head)) + b"}\n" + b"\0" * 64)
    with pytest.raises(UnreadableFileError, match="unknown DataType"):
        load_data(weird)


def test_a_truncated_edf_is_refused(tmp_path):
    head = b"{\nByteOrder = LowByteFirst ;\nDataType = FloatValue ;\nDim_1 = 64 ;\nDim_2 = 64 ;\n"
    path = tmp_path / "t.edf"
    path.write_bytes(head + b" " * (510 - len(head)) + b"}\n" + b"\0" * 100)
    with pytest.raises(UnreadableFileError, match="truncated EDF"):
        load_data(path)


def test_an_npy_with_python_objects_is_never_unpickled(tmp_path):
    np.save(tmp_path / "p.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(UnreadableFileError, match="pickle"):
        load_data(tmp_path / "p.npy")


def test_a_corrupt_npz_is_refused(tmp_path):
    np.savez(tmp_path / "a.npz", data=_counts())
    blob = (tmp_path / "a.npz").read_bytes()
    (tmp_path / "b.npz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(UnreadableFileError):
        load_data(tmp_path / "b.npz")


def test_every_error_is_a_reconstruction_error():
    for cls in (UnreadableFileError, HostileFileError, DataTooLargeError, InvalidDataError):
        assert issubclass(cls, ReconstructionError)


# ------------------------------------------------------------------ the command line
def test_the_cli_answers_hostile_files_with_one_line_and_exit_status_2(tmp_path, write_cxi):
    (tmp_path / "fake.h5").write_text("not hdf5")
    (tmp_path / "empty.cxi").write_bytes(b"")
    with h5py.File(tmp_path / "link.h5", "w") as f:
        f["data"] = h5py.ExternalLink("/etc/hostname", "/x")
    np.save(tmp_path / "complex.npy", np.ones((16, 16), np.complex64))
    np.save(tmp_path / "zero.npy", np.zeros((16, 16), np.float32))
    np.save(tmp_path / "pickle.npy", np.array([None], dtype=object), allow_pickle=True)
    write_cxi(tmp_path / "stack.cxi", _counts((8, 16, 16)), translation=np.zeros((8, 3)))
    script = (
        "import sys\nfrom reconstruction.cli import main\n"
        "for argv in sys.argv[1:]:\n"
        "    import io, contextlib\n"
        "    err = io.StringIO()\n"
        "    with contextlib.redirect_stderr(err):\n"
        "        rc = main(argv.split('|'))\n"
        "    print(rc, err.getvalue().replace(chr(10), '\\\\n'))\n"
    )
    out_file = tmp_path / "out.cxi"
    cases = [
        f"info|{tmp_path / n}"
        for n in ("fake.h5", "empty.cxi", "link.h5", "zero.npy", "pickle.npy")
    ]
    cases += [
        f"prepare|{tmp_path / n}|--out|{out_file}" for n in ("complex.npy", "stack.cxi", "link.h5")
    ]
    result = subprocess.run(
        [sys.executable, "-c", script, *cases],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == len(cases)
    for case, line in zip(cases, lines):
        rc, _, message = line.partition(" ")
        assert rc == "2", (case, line)
        assert (
            message.startswith("error: ") and message.endswith("\\n") and message.count("\\n") == 1
        ), line
    assert not out_file.exists()
    assert list(tmp_path.glob("*.tmp-*")) == []


def test_the_cli_process_prints_no_traceback_for_a_truncated_file(tmp_path):
    path = _h5(tmp_path / "full.h5", data=np.ones((32, 32, 32), np.float32))
    blob = path.read_bytes()
    (tmp_path / "cut.h5").write_bytes(blob[: len(blob) // 3])
    result = subprocess.run(
        [sys.executable, "-m", "reconstruction", "info", str(tmp_path / "cut.h5")],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1


# ------------------------------------------------------------------ random damage
def test_randomly_damaged_files_raise_only_reconstruction_errors(tmp_path, write_cxi):
    """Flip bytes in headers and metadata of every format: never an unexpected exception."""
    from reconstruction.io import write_result
    from reconstruction.io.types import ResultRecord
    from reconstruction.io.workflow import inspect_file

    rng = np.random.default_rng(0)
    counts = _counts((4, 16, 16))
    originals = [
        write_cxi(
            tmp_path / "a.cxi",
            counts,
            mask=np.zeros((16, 16), np.uint32),
            axes="theta:y:x",
            angles=np.linspace(0, 1, 4),
        ),
        tmp_path / "r.cxi",
        tmp_path / "c.npz",
        tmp_path / "d.npy",
    ]
    write_result(
        tmp_path / "r.cxi",
        ResultRecord(
            obj=counts.astype(np.complex64),
            support=counts > 20,
            intensity=counts,
            mask=counts < 0,
            config={"a": 1},
            metrics={"chi2": 0.1},
        ),
    )
    np.savez_compressed(tmp_path / "c.npz", data=counts)
    np.save(tmp_path / "d.npy", counts)
    for original in originals:
        blob = original.read_bytes()
        for i in range(25):
            damaged = bytearray(blob)
            for _ in range(3):
                pos = int(rng.integers(0, min(len(damaged), 4096)))
                damaged[pos] = int(rng.integers(0, 256))
            if i % 5 == 0:
                damaged = damaged[: int(rng.integers(1, len(damaged)))]
            path = tmp_path / f"damaged{original.suffix}"
            path.write_bytes(bytes(damaged))
            for reader in (load_data, inspect_file, load_object):
                try:
                    reader(path)
                except ReconstructionError:
                    pass
