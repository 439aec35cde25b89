"""The top-level command line and the shared progress / device helpers."""

import subprocess
import sys

import pytest
import torch

from reconstruction.device import autocast_bf16, pick_device
from reconstruction.errors import Cancelled, ConfigError
from reconstruction.progress import CallbackCancelToken, CancelToken, check


def test_help_lists_the_commands_and_exits_zero():
    out = subprocess.run(
        [sys.executable, "-m", "reconstruction", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0
    assert "COMMAND" in out.stdout


def test_auto_device_is_cuda_only_when_available():
    import torch

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device("auto").type == expected
    assert pick_device("cpu").type == "cpu"


def test_cpu_bf16_autocast_is_opt_in_and_off_when_not_wanted(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.delenv("CDI_CPU_BF16", raising=False)
    assert autocast_bf16(cpu) is False
    monkeypatch.setenv("CDI_CPU_BF16", "1")
    assert autocast_bf16(cpu) is True
    assert autocast_bf16(cpu, wanted=False) is False


def test_unknown_device_is_refused_with_a_clear_message():
    with pytest.raises(ConfigError, match="unknown device"):
        pick_device("tpu")


def test_cancel_token_stops_a_loop_at_its_next_check():
    token = CancelToken()
    check(token)
    token.cancel()
    with pytest.raises(Cancelled):
        check(token)


def test_callback_cancel_token_polls_at_most_once_per_period():
    calls = []

    def poll():
        calls.append(1)
        return len(calls) >= 2

    token = CallbackCancelToken(poll, period_s=3600)
    assert not token.is_cancelled()
    assert not token.is_cancelled()
    assert len(calls) == 1
