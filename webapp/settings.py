"""Django settings, all from environment variables with embedded defaults (SQLite, local Redis, CPU).

Variables: DATABASE_URL, REDIS_URL, MEDIA_ROOT, DJANGO_SECRET_KEY, DJANGO_DEBUG,
DJANGO_ALLOWED_HOSTS, CDI_UPLOAD_LIMIT_BYTES (default 2 GB), CDI_DEVICE (auto|cpu|cuda),
CDI_VALIDATE_IN_WORKER (default 1), CDI_VALIDATION_TIMEOUT (seconds, default 120),
CDI_PLOTLY_JS (static path of the plotly.js bundle, default the viewer's partial bundle),
and the job-machinery knobs documented in docs/webapp.md: CDI_HEARTBEAT_S, CDI_JOB_STALE_S,
CDI_SWEEP_INTERVAL_S, CDI_PROGRESS_INTERVAL_S, CDI_CANCEL_POLL_S, CDI_VISIBILITY_TIMEOUT_S,
CDI_TIME_LIMITS_S (JSON {kind: seconds}).
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CDI_VAR_DIR", BASE_DIR / "var"))

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "dev-only-insecure-key-change-me")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "*").split(",")
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",
    "webapp.core",
]
# The pages app (owned by "viewer") is installed as soon as it exists.
if (Path(__file__).resolve().parent / "viewer" / "apps.py").exists():
    INSTALLED_APPS.append("webapp.viewer")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "webapp.core.uploads.UploadLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "webapp.urls"
WSGI_APPLICATION = "webapp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "frontend" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "webapp.viewer.context.plotly_js",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"), conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Writers take the lock at BEGIN, so a cancel and a worker's progress write queue up
    # (for up to 30 s) instead of failing with "database is locked" mid-transaction.
    DATABASES["default"].setdefault("OPTIONS", {}).update(timeout=30, transaction_mode="IMMEDIATE")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
# plotly.js comes from the pinned ``plotly`` package itself (its package_data), served under
# /static/vendor/: no copy in the repository, never a CDN, always the version requirements.txt pins.
STATICFILES_DIRS = [
    BASE_DIR / "frontend" / "static",
    ("vendor", Path(importlib.util.find_spec("plotly").submodule_search_locations[0]) / "package_data"),
]
# The pages load plotly.js restricted to the traces they draw (frontend/plotly-bundle/README.md);
# "vendor/plotly.min.js" is the package's full bundle.
CDI_PLOTLY_JS = os.environ.get("CDI_PLOTLY_JS", "plotly/plotly-cdi.min.js")
STATIC_ROOT = VAR_DIR / "static"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CDI_UPLOAD_LIMIT_BYTES = int(os.environ.get("CDI_UPLOAD_LIMIT_BYTES", str(2 * 1024**3)))
CDI_DEVICE = os.environ.get("CDI_DEVICE", "auto")
# Uploads are streamed to disk, never held in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 0
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024**2

# Every upload streams to a temporary file on the media disk (so storing it is a rename),
# hashed on the fly and refused with 413 as soon as it passes CDI_UPLOAD_LIMIT_BYTES.
FILE_UPLOAD_HANDLERS = ["webapp.core.uploads.LimitedUploadHandler"]
FILE_UPLOAD_TEMP_DIR = str(MEDIA_ROOT / "uploads-tmp")
# Uploaded files are parsed by a worker on the ``cpu`` queue (never in the web process); the
# request waits this many seconds for its answer, then answers 503 and keeps nothing.
CDI_VALIDATE_IN_WORKER = os.environ.get("CDI_VALIDATE_IN_WORKER", "1").strip().lower() not in ("0", "false", "no", "off")
CDI_VALIDATION_TIMEOUT_S = float(os.environ.get("CDI_VALIDATION_TIMEOUT", "120"))
try:
    Path(FILE_UPLOAD_TEMP_DIR).mkdir(parents=True, exist_ok=True)
    Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)
except OSError:  # a read-only media volume: Django's check reports it
    pass

# Jobs (see docs/webapp.md and workers/sweeper.py).
CDI_HEARTBEAT_S = float(os.environ.get("CDI_HEARTBEAT_S", "5"))
CDI_JOB_STALE_S = float(os.environ.get("CDI_JOB_STALE_S", "120"))
CDI_SWEEP_INTERVAL_S = float(os.environ.get("CDI_SWEEP_INTERVAL_S", "60"))
CDI_PROGRESS_INTERVAL_S = float(os.environ.get("CDI_PROGRESS_INTERVAL_S", "1"))
CDI_CANCEL_POLL_S = float(os.environ.get("CDI_CANCEL_POLL_S", "1"))
CDI_TIME_LIMITS_S = {
    "simulate": 4 * 3600,
    "train": 24 * 3600,
    "finetune": 6 * 3600,
    "predict": 1800,
    "refine": 4 * 3600,
    "phase": 8 * 3600,
    "pipeline": 6 * 3600,
    **json.loads(os.environ.get("CDI_TIME_LIMITS_S", "{}")),
}
# Redis redelivers an unacknowledged message after this long: longer than the longest job.
CDI_VISIBILITY_TIMEOUT_S = int(
    os.environ.get("CDI_VISIBILITY_TIMEOUT_S", str(int(max(CDI_TIME_LIMITS_S.values())) + 3600))
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "webapp": {"handlers": ["console"], "level": os.environ.get("CDI_LOG_LEVEL", "INFO")},
        "workers": {"handlers": ["console"], "level": os.environ.get("CDI_LOG_LEVEL", "INFO")},
    },
}
