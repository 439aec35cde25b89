"""A small file cache of gzipped JSON figure bundles, and the HTTP response that serves them.

Entries are keyed by the source file's path, size and modification time plus the request's
options, so a re-written result invalidates them. Writes are atomic (temporary file, then
``os.replace``), so two workers computing the same entry at once are harmless.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse


def cache_dir() -> Path:
    """Folder of the viewer's cache: MEDIA_ROOT/cache/viewer/."""
    return Path(settings.MEDIA_ROOT) / "cache" / "viewer"


@functools.cache
def code_version() -> str:
    """Hash of the figure code and of the code that gives figures their units (the reader's
    metadata, the voxel size), so that a new version of either invalidates the cache."""
    from reconstruction.io import hdf5_reader, voxel
    from reconstruction.phasing import schedule

    digest = hashlib.sha256()

    here = Path(__file__).parent
    sources = (here / "figures.py", here / "encoding.py", here / "units.py", Path(schedule.__file__),
               Path(voxel.__file__), Path(hdf5_reader.__file__))
    for path in sources:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def cache_key(source: Path, **options: Any) -> str:
    """A file name for the figures of ``source`` (size + mtime) computed with ``options``."""
    stat = source.stat()
    text = json.dumps([str(source.resolve()), stat.st_size, stat.st_mtime_ns, code_version(), options], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32] + ".json.gz"


def cached_gzip_json(source: Path, compute: Callable[[], Any], **options: Any) -> bytes:
    """Return gzipped JSON of ``compute()``, reusing the cached copy for (source, options)."""
    path = cache_dir() / cache_key(source, **options)
    if path.exists():
        return path.read_bytes()
    payload = gzip.compress(json.dumps(compute(), allow_nan=False, separators=(",", ":")).encode(), compresslevel=5)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return payload


def gzip_json_response(request: HttpRequest, payload: bytes, *, status: int = 200) -> HttpResponse:
    """Serve gzipped JSON bytes as is when the client accepts gzip, else decompressed."""
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        response = HttpResponse(payload, content_type="application/json", status=status)
        response["Content-Encoding"] = "gzip"
    else:
        response = HttpResponse(gzip.decompress(payload), content_type="application/json", status=status)
    response["Vary"] = "Accept-Encoding"
    response["Cache-Control"] = "private, max-age=0"
    return response
