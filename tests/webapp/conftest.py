"""Web tests without a worker check uploads in-process; tests using ``celery_worker`` go through it."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _inline_validation_without_a_worker(request, settings) -> None:
    """Turn ``CDI_VALIDATE_IN_WORKER`` off unless the test starts the real Celery worker."""
    if "celery_worker" not in request.fixturenames:
        settings.CDI_VALIDATE_IN_WORKER = False
