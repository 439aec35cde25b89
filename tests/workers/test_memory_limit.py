"""The upload-validation worker's memory cap: parsed from the environment, applied per process,
and a file that needs more memory than the cap is refused with a message (no crash)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from reconstruction.errors import ConfigError
from workers.limits import memory_limit_mb

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("raw", "expected"), [(None, None), ("", None), ("0", None), ("2048", 2048), (" 6144 ", 6144)]
)
def test_the_cap_is_read_from_the_environment(raw, expected):
    env = {} if raw is None else {"CDI_WORKER_MEMORY_LIMIT_MB": raw}
    assert memory_limit_mb(env) == expected


@pytest.mark.parametrize("raw", ["lots", "-1"])
def test_a_bad_cap_is_refused_with_the_variable_named(raw):
    with pytest.raises(ConfigError, match="CDI_WORKER_MEMORY_LIMIT_MB"):
        memory_limit_mb({"CDI_WORKER_MEMORY_LIMIT_MB": raw})


def test_a_file_needing_more_memory_than_the_cap_is_refused_with_a_message(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "big.h5"
    # 512^3 counts declared (0.5 GiB as float32, under the 4 GiB dataset limit), 9 kB on disk:
    # unwritten chunks read as the fill value
    with h5py.File(path, "w") as handle:
        data = handle.create_dataset(
            "entry_1/data_1/data", shape=(512,) * 3, dtype="uint8", chunks=(64,) * 3,
            compression="gzip", fillvalue=0,
        )
        data[250:258, 250:258, 250:258] = 3
    script = textwrap.dedent(
        f"""
        import json, os, resource, sys
        sys.path.insert(0, {str(ROOT)!r})
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
        from workers.limits import apply_memory_limit
        from workers.tasks import inspect_upload_answer
        import reconstruction.io.workflow  # imports in before the cap is measured from here
        status = open("/proc/self/status").read().split("VmSize:")[1].split()[0]
        apply_memory_limit(int(status) // 1024 + 300)
        print(json.dumps({{"cap": resource.getrlimit(resource.RLIMIT_AS)[0],
                           "answer": inspect_upload_answer({str(path)!r})}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["cap"] > 0
    assert out["answer"] == {
        "error": f"{path}: reading this file needs more memory than the server allows"
    }


def test_a_platform_refusing_the_cap_logs_a_warning_and_runs_uncapped(monkeypatch, caplog):
    import resource

    from workers.limits import apply_memory_limit

    def refuse(*args):
        raise ValueError("not allowed")

    monkeypatch.setattr(resource, "setrlimit", refuse)
    with caplog.at_level("WARNING", logger="workers.limits"):
        apply_memory_limit(1024)
    assert "cannot cap its memory (not allowed); running uncapped" in caplog.text
