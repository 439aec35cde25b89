"""Helpers shared by the command modules: JSON output, progress bar, common options."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from reconstruction.io.jsonable import jsonable as to_jsonable
from reconstruction.progress import ProgressEvent


def run_with_progress(workflow, *args: Any, **kwargs: Any) -> Any:
    """Call ``workflow(*args, progress=<terminal bar>, **kwargs)``; the bar's line ends even on error."""
    bar = TerminalProgress()
    try:
        return workflow(*args, progress=bar, **kwargs)
    finally:
        bar.close()


def print_json(payload: dict[str, Any]) -> None:
    """Print ``payload`` as indented JSON on stdout."""
    print(json.dumps(to_jsonable(payload), indent=2))


def print_psf_line(metrics: dict[str, Any]) -> None:
    """Print the fitted partial-coherence kernel's width and the coherent chi2, if one was fitted."""
    if metrics.get("psf_fwhm_px") is None:
        return
    coherent = metrics.get("chi2_coherent")
    print(f"psf          FWHM {metrics['psf_fwhm_px']:.2f} px   chi2 without it "
          f"{coherent if coherent is not None else float('nan'):.4g}")


def add_device_option(parser) -> None:
    """Add ``--device auto|cpu|cuda``."""
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")


def add_psf_option(parser) -> None:
    """Add ``--psf [SPEC]``: model partial coherence (a kernel blurring the calculated intensity,
    fitted to the data), with the defaults or PyNX-style settings."""
    parser.add_argument(
        "--psf", nargs="?", const="on", default=None, metavar="SPEC",
        help="model partial coherence: the calculated intensity is blurred by a point-spread "
        "function fitted to the data from half the iterations on (PyNX's psf); SPEC is "
        "MODEL,FWHM[,ETA][,PERIOD] such as gaussian,0.5,20 (the default) or "
        "pseudo-voigt,1,0.05,20; chi2 is then that of the blurred model",
    )


def add_shrinkwrap_option(parser) -> None:
    """Add ``--shrinkwrap`` / ``--no-shrinkwrap`` (does a refinement update the starting support)."""
    import argparse

    parser.add_argument("--shrinkwrap", action=argparse.BooleanOptionalAction, default=True,
                        help="update the starting support by shrink-wrap during the schedule, as "
                        "random starts do (default); --no-shrinkwrap keeps the prediction's "
                        "10%% support fixed")


def shape_value(text: str) -> int | str:
    """argparse type of ``--shape``: a size in pixels (>= 8) or "full"."""
    import argparse

    if text == "full":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size in pixels or 'full', got {text!r}")
    if value < 8:
        raise argparse.ArgumentTypeError(f"the size must be at least 8 pixels, got {value}")
    return value


def add_json_option(parser) -> None:
    """Add ``--json`` (machine-readable summary on stdout)."""
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout")


class TerminalProgress:
    """A one-line progress bar on stderr when it is a terminal; else one log line per epoch.

    Under ``nohup``, a batch system or a redirect a bar would be noise, but a long training
    run must still say how it goes: each ``epoch`` event is then written as a plain line.
    """

    def __init__(self, enabled: bool | None = None, width: int = 30) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.width = width
        self._start = time.monotonic()
        self._last = 0.0

    def __call__(self, event: ProgressEvent) -> None:
        if not self.enabled:
            if event.stage == "epoch":
                values = " ".join(f"{k}={v:.4g}" for k, v in event.values.items())
                elapsed = time.monotonic() - self._start
                sys.stderr.write(f"epoch {event.step}/{event.total} {values} {elapsed:.0f}s\n")
                sys.stderr.flush()
            return
        now = time.monotonic()
        if now - self._last < 0.1 and event.fraction < 1.0:
            return
        self._last = now
        filled = int(round(self.width * min(max(event.fraction, 0.0), 1.0)))
        values = " ".join(f"{k}={v:.3g}" for k, v in list(event.values.items())[:3])
        bar = "#" * filled + "-" * (self.width - filled)
        elapsed = now - self._start
        sys.stderr.write(
            f"\r{event.stage:>10} [{bar}] {100 * event.fraction:5.1f}% {values} {elapsed:6.1f}s"
        )
        if event.fraction >= 1.0:
            sys.stderr.write("\n")
        sys.stderr.flush()

    def close(self) -> None:
        """End the line if a bar was drawn."""
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()
