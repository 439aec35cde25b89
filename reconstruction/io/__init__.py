"""Data layer: read diffraction data and objects in every format we support, write results.

``load_data`` (raw CXI/HDF5/NeXus/NPY/NPZ/EDF and our prepared CXI), ``load_object`` (PyNX,
cohere, our result files), ``write_prepared``, ``write_result`` / ``read_result``. Workflows for
the CLI and the web app are in ``reconstruction.io.workflow``. Formats and limits: docs/data.md.
"""

from reconstruction.io.load import load_data
from reconstruction.io.objects import load_object
from reconstruction.io.prepared import write_prepared
from reconstruction.io.results import read_result, write_result
from reconstruction.io.types import DiffractionData, Metadata, ObjectData, Provenance, ResultRecord

__all__ = [
    "DiffractionData",
    "Metadata",
    "ObjectData",
    "Provenance",
    "ResultRecord",
    "load_data",
    "load_object",
    "read_result",
    "write_prepared",
    "write_result",
]
