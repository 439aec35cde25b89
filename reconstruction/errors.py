"""Exceptions the library raises, each with a message a scientist can act on.

Every error the CLI and the web app show to a user derives from ``ReconstructionError``;
anything else is a bug.
"""


class ReconstructionError(Exception):
    """Base class of every user-facing error of the library."""


class InvalidDataError(ReconstructionError, ValueError):
    """The data is readable but cannot be used as asked (shape, dtype, values)."""


class UnreadableFileError(ReconstructionError):
    """The file is not in a format we read, or it is corrupt or truncated."""


class HostileFileError(ReconstructionError):
    """The file asks us to follow links outside itself or to read unbounded data."""


class DataTooLargeError(HostileFileError):
    """A dataset's declared or decompressed size exceeds the configured limit."""


class AmbiguousDataError(ReconstructionError):
    """Several datasets could be the diffraction data; the user must choose one."""


class NotAVolumeError(InvalidDataError):
    """A 3D array that is a stack of 2D frames (e.g. ptychography), not a Bragg CDI volume."""


class ConfigError(ReconstructionError, ValueError):
    """A parameter (algorithm schedule, recipe, option) is malformed."""


class CheckpointError(ReconstructionError):
    """A model checkpoint is missing, corrupt or does not match this code."""


class Cancelled(ReconstructionError):
    """The caller cancelled a long computation through its cancel token."""
