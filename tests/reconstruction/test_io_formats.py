"""Reading diffraction data from CXI, HDF5/NeXus, NPY/NPZ and EDF files made by hand."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from reconstruction.errors import AmbiguousDataError, InvalidDataError, NotAVolumeError
from reconstruction.io import load_data
from reconstruction.io.load import sha256_of


def _volume(shape=(8, 16, 16), seed=0):
    return np.random.default_rng(seed).poisson(50, shape).astype(np.int32)


def test_cxi_data_mask_bits_and_metadata_are_read_in_si_units(tmp_path, write_cxi):
    data = _volume()
    mask = np.zeros((16, 16), np.uint32)
    mask[0, 0] = 0x1  # invalid
    mask[0, 1] = 0x2  # saturated
    mask[0, 2] = 0x80  # bad
    mask[0, 3] = 0x1000  # informational bit: keeps the pixel
    mask[0, 4] = 0x20  # peak mask: informational here
    angles = np.linspace(-0.1, 0.1, 8)
    path = write_cxi(tmp_path / "scan.cxi", data, mask=mask, axes="theta:y:x", angles=angles)
    d = load_data(path)
    assert d.shape == (8, 16, 16) and d.intensity.dtype == np.float32
    assert d.mask.shape == d.shape and d.mask.dtype == bool
    assert d.mask[:, 0, :3].all() and not d.mask[:, 0, 3:5].any()
    assert int(d.mask.sum()) == 3 * 8
    assert np.all(d.intensity[d.mask] == 0)
    np.testing.assert_array_equal(d.intensity[~d.mask], data[~d.mask].astype(np.float32))
    m = d.metadata
    assert m.distance_m == 0.5 and m.x_pixel_size_m == 55e-6 and m.y_pixel_size_m == 55e-6
    assert m.energy_J == pytest.approx(1.4419589706e-15)
    assert m.wavelength_m == pytest.approx(1.3776e-10, rel=1e-3)  # hc / E at 9 keV
    assert m.axes == ("theta", "y", "x") and m.rocking_axis == "theta"
    np.testing.assert_allclose(m.rocking_angles_deg, angles)
    assert d.provenance.source_sha256 == sha256_of(path)
    assert d.provenance.source_format == "cxi"
    assert d.provenance.dataset_path == "/entry_1/data_1/data"


def test_entry_last_is_preferred_over_numbered_entries(tmp_path):
    path = tmp_path / "two.cxi"
    with h5py.File(path, "w") as f:
        f["cxi_version"] = 150
        f["entry_1/data_1/data"] = np.ones((16, 16), np.float32)
        f["entry_2/data_1/data"] = np.full((16, 16), 2.0, np.float32)
        f["entry_last"] = h5py.SoftLink("/entry_2")
    assert load_data(path).intensity.max() == 2.0


def test_several_cxi_entries_without_entry_last_are_ambiguous(tmp_path):
    path = tmp_path / "two.cxi"
    with h5py.File(path, "w") as f:
        f["cxi_version"] = 150
        f["entry_1/data_1/data"] = np.ones((16, 16), np.float32)
        f["entry_2/data_1/data"] = np.full((16, 16), 2.0, np.float32)
    with pytest.raises(AmbiguousDataError, match="entry_2"):
        load_data(path)


def test_plain_hdf5_with_a_single_plausible_dataset_is_found(tmp_path):
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:
        f["scan/frames"] = _volume()
        f["scan/monitor"] = np.arange(8.0)
        f["scan/bad_pixel_mask"] = np.zeros((16, 16), np.uint8)
    d = load_data(path)
    assert d.shape == (8, 16, 16) and d.provenance.dataset_path == "/scan/frames"
    assert d.provenance.source_format == "hdf5"


def test_ambiguous_hdf5_lists_the_candidates_and_path_selects_one(tmp_path):
    path = tmp_path / "two.h5"
    with h5py.File(path, "w") as f:
        f["a/data"] = _volume()
        f["b/data"] = _volume(seed=1).astype(np.float32)
    with pytest.raises(AmbiguousDataError) as info:
        load_data(path)
    assert "/a/data (8, 16, 16) int32" in str(info.value) and "/b/data" in str(info.value)
    assert load_data(path, dataset_path="/b/data").provenance.dataset_path == "/b/data"
    with pytest.raises(InvalidDataError, match="no dataset"):
        load_data(path, dataset_path="/c/data")


def test_nexus_default_and_signal_attributes_choose_the_data(tmp_path):
    path = tmp_path / "nx.nxs"
    with h5py.File(path, "w") as f:
        f.attrs["default"] = "entry"
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        entry.attrs["default"] = "plot"
        entry["plot/counts"] = _volume()
        entry["plot"].attrs["signal"] = "counts"
        entry["other/frames"] = _volume(seed=2)
    d = load_data(path)
    assert d.provenance.dataset_path == "/entry/plot/counts"
    assert d.provenance.source_format == "nexus"


def test_npy_and_npz_are_read_without_pickle(tmp_path):
    data = _volume()
    np.save(tmp_path / "a.npy", data)
    assert load_data(tmp_path / "a.npy").shape == (8, 16, 16)
    np.savez(
        tmp_path / "b.npz", intensity=data, mask=np.zeros((16, 16), bool), angles=np.arange(8.0)
    )
    d = load_data(tmp_path / "b.npz")
    assert d.provenance.dataset_path == "intensity" and d.shape == (8, 16, 16)
    np.savez(tmp_path / "c.npz", frames=data, notes=np.arange(3.0))
    assert load_data(tmp_path / "c.npz").provenance.dataset_path == "frames"


def test_ambiguous_npz_lists_its_keys(tmp_path):
    np.savez(tmp_path / "d.npz", one=_volume(), two=_volume(seed=3))
    with pytest.raises(AmbiguousDataError, match="one .*two"):
        load_data(tmp_path / "d.npz")
    assert load_data(tmp_path / "d.npz", dataset_path="two").provenance.dataset_path == "two"


def _write_edf(
    path, array, *, dtype_name="FloatValue", order="LowByteFirst", header_size=512, extra=""
):
    dims = "".join(f"Dim_{i + 1} = {n} ;\n" for i, n in enumerate(array.shape[::-1]))
    text = (
        f"{{\nHeaderID = EH:000001:000000:000000 ;\nImage = 1 ;\nByteOrder = {order} ;\n"
        f"DataType = {dtype_name} ;\n{dims}Size = {array.nbytes} ;\n{extra}"
    )
    header = text.encode("ascii")
    header += b" " * (header_size - len(header) - 2) + b"}\n"
    path.write_bytes(header + array.tobytes())
    return path


def test_edf_header_gives_type_byte_order_and_dimensions(tmp_path):
    array = np.arange(32 * 48, dtype="<f4").reshape(32, 48) + 1.0
    d = load_data(_write_edf(tmp_path / "a.edf", array))
    np.testing.assert_array_equal(d.intensity, array)
    big = np.arange(16 * 16, dtype=">u2").reshape(16, 16)
    d = load_data(
        _write_edf(
            tmp_path / "b.edf",
            big,
            dtype_name="UnsignedShort",
            order="HighByteFirst",
            header_size=1024,
            extra="SampleDistance = 2.5 ;\nPSize_1 = 7.5e-05 ;\n",
        )
    )
    np.testing.assert_array_equal(d.intensity, big.astype(np.float32))
    assert d.metadata.distance_m == 2.5 and d.metadata.x_pixel_size_m == 7.5e-5


def test_exact_zeros_of_a_processed_float_pattern_are_masked_but_counts_zeros_are_not(tmp_path):
    rng = np.random.default_rng(0)
    processed = rng.uniform(1, 100, (32, 32)).astype(np.float32)
    processed[14:18, 14:18] = 0
    d = load_data(_write_edf(tmp_path / "p.edf", processed))
    assert d.mask.sum() == 16 and any("exactly 0" in w for w in d.provenance.warnings)
    counts = rng.poisson(1.0, (32, 32)).astype(np.float32)
    np.save(tmp_path / "c.npy", counts)
    assert load_data(tmp_path / "c.npy").mask.sum() == 0


def test_dark_and_flat_fields_are_cropped_from_the_origin_and_applied(tmp_path, write_cxi):
    frames = np.full((4, 16, 16), 110, np.int32)
    dark = np.full((32, 32), 10, np.int32)
    dark[3, 3] = 500  # hot pixel
    flat = np.full((32, 32), 2.0, np.float32)
    flat[0:16, 12:16] = 4.0  # twice the gain on the right quarter of the ROI
    flat[5, 5] = 0.0  # dead pixel
    path = write_cxi(tmp_path / "df.cxi", frames, dark=dark, flat=flat)
    d = load_data(path)
    assert d.mask[:, 3, 3].all() and d.mask[:, 5, 5].all()
    good = ~d.mask[0]
    # (110 - 10) / (flat / median(flat over the frame) = 2)
    np.testing.assert_allclose(d.intensity[0][good & (np.arange(16) < 12)], 100.0)
    np.testing.assert_allclose(d.intensity[0][good & (np.arange(16) >= 12)], 50.0)
    steps = [s["step"] for s in d.provenance.steps]
    assert {"crop_dark_field", "subtract_dark", "crop_flat_field", "divide_flat"} <= set(steps)


def test_a_4d_array_with_leading_singleton_is_squeezed(tmp_path):
    np.save(tmp_path / "a.npy", _volume()[None])
    d = load_data(tmp_path / "a.npy")
    assert d.shape == (8, 16, 16)
    assert d.provenance.steps[1]["step"] == "squeeze"


def test_a_frame_stack_with_sample_translations_is_not_a_volume(tmp_path, write_cxi):
    path = write_cxi(tmp_path / "ptycho.cxi", _volume(), translation=np.zeros((8, 3)))
    with pytest.raises(NotAVolumeError, match="translation"):
        load_data(path)


def test_a_frame_stack_declared_by_its_axes_is_not_a_volume(tmp_path, write_cxi):
    path = write_cxi(tmp_path / "ptycho.cxi", _volume(), axes="translation:y:x")
    with pytest.raises(NotAVolumeError, match="translation:y:x"):
        load_data(path)
