"""docker-compose.yml and the Dockerfile give the production layout the issue asks for.

No Docker engine runs in CI, so the files are checked as data: PostgreSQL and Redis with
healthchecks, a gunicorn web service that migrates and bootstraps first, one GPU worker
(NVIDIA device, ``-Q gpu -c 1``), one CPU worker (``-Q cpu``) and an upload-validation worker
(``-Q io``, memory-capped), one media volume shared by all of them, and the same environment
everywhere.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from webapp.core.schemas import QUEUES

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("web", "worker-gpu", "worker-cpu", "worker-io")
WORKERS = ("worker-gpu", "worker-cpu", "worker-io")


@pytest.fixture(scope="module")
def compose() -> dict:
    """docker-compose.yml parsed with PyYAML (merge keys resolved)."""
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _argv(service: dict) -> list[str]:
    command = service["command"]
    return list(command) if isinstance(command, list) else shlex.split(command)


def _queues(argv: list[str]) -> set[str]:
    return set(argv[argv.index("-Q") + 1].split(","))


def _default(value: str) -> str:
    """The default of a ``${NAME:-default}`` interpolation (or the value itself)."""
    match = re.fullmatch(r"\$\{\w+:-(.*)\}", value)
    return match.group(1) if match else value


def test_the_layout_is_postgres_redis_web_and_three_workers(compose):
    services = compose["services"]
    assert set(services) == {"db", "redis", *APP_SERVICES}
    assert services["db"]["image"].startswith("postgres:") and services["redis"][
        "image"
    ].startswith("redis:")
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        assert service.get("restart") == "unless-stopped", name


def test_the_web_service_migrates_bootstraps_then_runs_gunicorn_longer_than_validation_waits(
    compose,
):
    web = compose["services"]["web"]
    script = _argv(web)[-1]
    steps = [step.strip() for step in script.split("&&")]
    assert steps[0].startswith("python manage.py migrate") and steps[1].startswith(
        "python manage.py bootstrap"
    )
    assert re.match(r"(exec )?gunicorn webapp\.wsgi ", steps[2])
    gunicorn = shlex.split(steps[2])
    assert float(gunicorn[gunicorn.index("--timeout") + 1]) > float(
        _default(web["environment"]["CDI_VALIDATION_TIMEOUT"])
    )
    assert "8000:8000" in web["ports"]
    for dependency in ("db", "redis"):
        assert web["depends_on"][dependency]["condition"] == "service_healthy"


def test_the_gpu_worker_has_one_nvidia_gpu_and_one_process_on_the_gpu_queue(compose):
    gpu = compose["services"]["worker-gpu"]
    argv = _argv(gpu)
    assert argv[:4] == ["celery", "-A", "workers.app", "worker"]
    assert _queues(argv) == {"gpu"} and argv[argv.index("-c") + 1] == "1"
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"] and device["count"] == 1
    assert gpu["environment"]["CDI_DEVICE"] == "cuda"
    assert "cu12" in gpu["build"]["args"]["TORCH_INDEX"]


def test_the_cpu_worker_takes_simulate_jobs_and_a_capped_io_worker_the_uploads(compose):
    from workers.app import QUEUE_NAMES
    from workers.tasks import VALIDATION_QUEUE

    cpu = compose["services"]["worker-cpu"]
    argv = _argv(cpu)
    assert argv[:4] == ["celery", "-A", "workers.app", "worker"] and _queues(argv) == {"cpu"}
    assert cpu["environment"]["CDI_DEVICE"] == "cpu"
    io = compose["services"]["worker-io"]
    assert _queues(_argv(io)) == {VALIDATION_QUEUE}  # never behind a long job
    assert int(_default(io["environment"]["CDI_WORKER_MEMORY_LIMIT_MB"])) >= 4096
    served = set().union(*(_queues(_argv(compose["services"][name])) for name in WORKERS))
    assert set(QUEUES.values()) | {VALIDATION_QUEUE} <= served == set(QUEUE_NAMES)
    names = [_argv(compose["services"][name])[_argv(compose["services"][name]).index("-n") + 1]
             for name in WORKERS]
    assert len(set(names)) == len(names)  # distinct node names
    assert compose["services"]["web"]["environment"]["CDI_VALIDATE_IN_WORKER"] == "1"


def test_web_and_workers_share_the_media_volume_and_the_same_environment(compose):
    services = compose["services"]
    assert "media" in compose["volumes"]
    env = services["web"]["environment"]
    assert env["DATABASE_URL"].startswith("postgres://") and "@db:5432/" in env["DATABASE_URL"]
    assert env["REDIS_URL"].startswith("redis://redis:6379/")
    for name in APP_SERVICES:
        service = services[name]
        assert f"media:{env['MEDIA_ROOT']}" in service["volumes"], name
        for key in (
            "DATABASE_URL",
            "REDIS_URL",
            "MEDIA_ROOT",
            "DJANGO_SECRET_KEY",
            "CDI_VALIDATION_TIMEOUT",
        ):
            assert service["environment"][key] == env[key], (name, key)
    for name in WORKERS:  # workers start after the web service migrated
        assert services[name]["depends_on"]["web"]["condition"] == "service_healthy"
        assert services[name]["depends_on"]["db"]["condition"] == "service_healthy"
    assert (
        "DJANGO_SECRET_KEY:?" in (ROOT / "docker-compose.yml").read_text()
    )  # refuses to start without one


def test_the_dockerfile_builds_one_non_root_image_with_static_files_and_the_pinned_torch():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11", text, re.MULTILINE)
    assert (
        "pip install --no-cache-dir -r requirements.txt" in text
        and "grep '^torch==' requirements.txt" in text
    )
    assert "collectstatic" in text and re.search(r"^USER (?!root)\w+", text, re.MULTILINE)
    assert "MEDIA_ROOT=/data/media" in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".git" in ignored and ".venv" in ignored


def test_dev_app_runs_a_job_worker_and_a_capped_upload_worker():
    text = (ROOT / "dev.py").read_text()
    assert re.search(r'"-Q", "cpu,gpu", "-c", "2", "-n", "jobs@%h"', text)
    assert re.search(r'"-Q", "io", "-c", "1", "-n", "io@%h"', text)
    assert re.search(r'"CDI_WORKER_MEMORY_LIMIT_MB", "\d+"', text)


def _compose_command() -> list[str] | None:
    """``docker compose`` (v2 plugin) or ``docker-compose`` (v1), whichever parses files here."""
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


def test_docker_compose_itself_accepts_the_file_without_an_engine(tmp_path):
    command = _compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SECRET_KEY"}

    def config(**extra: str) -> subprocess.CompletedProcess:
        argv = [*command, "-f", str(ROOT / "docker-compose.yml"), "config"]
        return subprocess.run(argv, capture_output=True, text=True, env={**env, **extra},
                              cwd=tmp_path, check=False, timeout=60)  # fmt: skip

    done = config(DJANGO_SECRET_KEY="test-only")
    assert done.returncode == 0, done.stderr
    assert "worker-gpu" in done.stdout and "driver: nvidia" in done.stdout
    refused = config()
    assert refused.returncode != 0 and "DJANGO_SECRET_KEY" in refused.stderr
