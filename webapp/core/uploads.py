"""Streaming uploads: a size limit enforced while the bytes arrive, and SHA-256 on the fly.

``LimitedUploadHandler`` (set in ``FILE_UPLOAD_HANDLERS``) writes every uploaded file to a
temporary file under ``FILE_UPLOAD_TEMP_DIR`` (same disk as ``MEDIA_ROOT`` so storing it is a
rename), hashes it as it streams and raises ``UploadTooLarge`` as soon as the limit
(``CDI_UPLOAD_LIMIT_BYTES``) is passed, deleting what it wrote. ``UploadLimitMiddleware``
parses multipart bodies before the views and the CSRF check and turns ``UploadTooLarge`` into a
413 response with a clear message (JSON under ``/api/``, text elsewhere).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import TemporaryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest, HttpResponse, JsonResponse


class UploadTooLarge(Exception):
    """An upload passed ``CDI_UPLOAD_LIMIT_BYTES``."""


def upload_limit_bytes() -> int:
    """The configured upload limit in bytes."""
    return int(settings.CDI_UPLOAD_LIMIT_BYTES)


def too_large_message(limit: int | None = None) -> str:
    """The message shown when an upload is refused for its size."""
    limit = upload_limit_bytes() if limit is None else limit
    return f"file too large: the upload limit is {limit:,} bytes ({limit / 1e9:.3g} GB)"


class HashingTemporaryUploadedFile(TemporaryUploadedFile):
    """A temporary uploaded file that knows its SHA-256 (``sha256_hex``) once complete."""

    sha256_hex: str = ""


class LimitedUploadHandler(FileUploadHandler):
    """Stream each uploaded file to a temporary file, hashing it, refusing it past the limit."""

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.limit = upload_limit_bytes()
        self.received = 0
        self.file: HashingTemporaryUploadedFile | None = None
        self.digest = hashlib.sha256()

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        """Open a fresh temporary file for the next uploaded file."""
        super().new_file(*args, **kwargs)
        temp_dir = getattr(settings, "FILE_UPLOAD_TEMP_DIR", None)
        if temp_dir:
            Path(temp_dir).mkdir(parents=True, exist_ok=True)
        self.digest = hashlib.sha256()
        self.received = 0
        self.file = HashingTemporaryUploadedFile(self.file_name, self.content_type, 0, self.charset, self.content_type_extra)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        """Write one chunk; raise ``UploadTooLarge`` (and delete the partial file) past the limit."""
        assert self.file is not None
        self.received += len(raw_data)
        if self.received > self.limit:
            self.discard()
            raise UploadTooLarge(too_large_message(self.limit))
        self.digest.update(raw_data)
        self.file.write(raw_data)

    def file_complete(self, file_size: int) -> HashingTemporaryUploadedFile | None:
        """Return the finished temporary file with its size and SHA-256."""
        if self.file is None:
            return None
        self.file.seek(0)
        self.file.size = file_size
        self.file.sha256_hex = self.digest.hexdigest()
        return self.file

    def discard(self) -> None:
        """Close and delete the temporary file being written."""
        if self.file is None:
            return
        path = self.file.temporary_file_path()
        try:
            self.file.close()
        except OSError:
            pass
        if os.path.exists(path):
            os.unlink(path)
        self.file = None


def too_large_response(request: HttpRequest, message: str) -> HttpResponse:
    """413 response: JSON ``{"detail": message}`` under /api/, plain text elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=413)
    return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")


class UploadLimitMiddleware:
    """Refuse oversized multipart uploads with 413 before any view or the CSRF check runs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in ("POST", "PUT", "PATCH") and request.content_type == "multipart/form-data":
            limit = upload_limit_bytes()
            try:
                declared = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                declared = 0
            # The body holds the file plus form fields and boundaries: allow 1 MiB of slack.
            if declared > limit + 1024**2:
                return too_large_response(request, too_large_message(limit))
            try:
                request.POST  # noqa: B018  (parses the body with LimitedUploadHandler)
            except UploadTooLarge as exc:
                return too_large_response(request, str(exc))
        return self.get_response(request)
