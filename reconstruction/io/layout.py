"""CXI paths written and read by this project, in one place (CXI 1.6, readable by silx and PyNX).

Result file::

    /cxi_version                       = 160
    /entry_1/start_time, program_name  (attributes on /entry_1 carry provenance)
    /entry_1/image_1/data              complex64 object, same grid as the prepared data, centred
    /entry_1/image_1/mask              bool support
    /entry_1/image_1/is_fft_shifted    0 (object centred)
    /entry_1/image_1/process_1/command, algorithm, configuration (JSON), program, version
    /entry_1/image_1/process_1/curves/<name>   per-iteration error curves (float64)
    /entry_1/image_1/process_1/timings (JSON)
    /entry_1/data_1/data               soft link -> /entry_1/image_1/data
    /entry_1/data_2/data               prepared intensity (float32, zero frequency centred)
    /entry_1/data_2/mask               prepared detector mask (bool, True = excluded)
    /entry_1/result_1/...              scalar metrics (chi2, chi2_free, llk, ...) as datasets

Prepared data file::

    /cxi_version = 160
    /entry_1/instrument_1/detector_1/data   float32 intensity, zero frequency centred
    /entry_1/instrument_1/detector_1/mask   uint32 CXI mask (0x1 invalid where excluded)
    /entry_1/data_1/data                    soft link -> detector data
    /entry_1/process_1/provenance           JSON of every preparation step
    /entry_1/process_1/metadata_extra       JSON of Metadata.extra
    /entry_1/process_1/program, version     "reconstruction", its version (the "prepared" marker)

Extra named arrays of a result file live in ``/entry_1/image_1/process_1/arrays/<name>``; the
full provenance dict is the JSON attribute ``provenance_json`` of ``/entry_1``, and each of its
scalar values is also an attribute of ``/entry_1``.
"""

CXI_VERSION = 160

ENTRY = "/entry_1"
IMAGE = f"{ENTRY}/image_1"
IMAGE_DATA = f"{IMAGE}/data"
IMAGE_MASK = f"{IMAGE}/mask"
PROCESS = f"{IMAGE}/process_1"
CURVES = f"{PROCESS}/curves"
DATA_LINK = f"{ENTRY}/data_1/data"
PREPARED_INTENSITY = f"{ENTRY}/data_2/data"
PREPARED_MASK = f"{ENTRY}/data_2/mask"
RESULT_METRICS = f"{ENTRY}/result_1"

DETECTOR = f"{ENTRY}/instrument_1/detector_1"
DETECTOR_DATA = f"{DETECTOR}/data"
DETECTOR_MASK = f"{DETECTOR}/mask"
PREPARED_PROVENANCE = f"{ENTRY}/process_1/provenance"
PREPARED_PROCESS = f"{ENTRY}/process_1"
PREPARED_METADATA_EXTRA = f"{ENTRY}/process_1/metadata_extra"
EXTRA_ARRAYS = f"{PROCESS}/arrays"
SAMPLE = f"{ENTRY}/sample_1"
SOURCE = f"{ENTRY}/instrument_1/source_1"
PROGRAM = "reconstruction"
