"""``python -m reconstruction system [--json]``: what this installation computes with."""

from __future__ import annotations

import argparse

from reconstruction.cli.common import add_json_option, print_json


def register(subparsers) -> None:
    """Add the ``system`` command."""
    parser = subparsers.add_parser(
        "system",
        help="versions, device, CPU threads, fused kernels and the FFT in use",
        description="Report the versions, the compute device (CUDA when present), the CPU "
        "threads a phasing run would use now, whether the fused CPU kernels (numba) and FFTW "
        "(pyFFTW) are available, and which FFT was measured faster for each box shape, number "
        "of runs and thread count so far.",
    )
    add_json_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the report; return 0."""
    from reconstruction.system_report import system_report

    out = system_report()
    if args.json:
        print_json(out)
        return 0
    print(f"reconstruction {out['reconstruction']}  python {out['python']}  torch {out['torch']}"
          f"  numpy {out['numpy']}")
    print(f"platform     {out['platform']}")
    gpus = ", ".join(out["gpus"]) or "none"
    print(f"device       {out['device']}   GPUs: {gpus}")
    print(f"CPU          {out['cpu_count']} CPUs, {out['cpu_threads_for_phasing']} thread(s) "
          f"for phasing now (1 when the machine is busy)")
    print(f"kernels      fused CPU kernels (numba): {'yes' if out['fused_cpu_kernels'] else 'no'}")
    print(f"training     bfloat16 autocast: {'yes' if out['training_bf16_autocast'] else 'no'}"
          " (CUDA; on the CPU with CDI_CPU_BF16=1)")
    fftw_state = "on" if out["fftw_enabled"] else (
        "off (CDI_FFT=torch)" if out["pyfftw"] else "off (pyFFTW not installed)")
    print(f"FFTW         {fftw_state}; pyFFTW {out['pyfftw'] or '-'}; wisdom {out['fftw_wisdom']}"
          f" ({'saved' if out['fftw_wisdom_saved'] else 'none yet'})")
    if not out["fft_choices"]:
        print("FFT choices  none measured yet (the first 3D run of >= 500 iterations x runs does)")
    for box, c in out["fft_choices"].items():
        print(f"FFT choice   {box}: {c.get('choice')} (FFTW {c.get('fftw_ms')} ms, torch "
              f"{c.get('torch_ms')} ms per batch pair)")
    return 0
