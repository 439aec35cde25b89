"""Time one training step of a network recipe in float32 and in bfloat16 autocast, side by side.

A step is what ``reconstruction.nn.train.fit`` does per batch: forward, physics loss, backward,
Adam update. The two precisions alternate (``--repeat`` rounds of ``--steps`` steps each) on
the same simulated batch, so a busy machine slows both alike. Also printed: the loss of both
precisions on that batch and the cosine between their gradients, and whether bfloat16 gave the
same gradients twice (determinism). CPU bfloat16 is opt-in in the product (``CDI_CPU_BF16=1``,
see ``reconstruction.device``); this script forces both.

Usage: ``.venv/bin/python benchmarks/bench_training_step.py [--recipe default] [--batch 4]
[--steps 5] [--repeat 3] [--threads 2] [--device cpu]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconstruction.device import pick_device
from reconstruction.nn import PhaseNet, get_recipe
from reconstruction.nn.model import use_cpu_fast_layout
from reconstruction.nn.train import NetworkItems, batch_loss
from reconstruction.simulate import Recipe, SimulatedDataset


def gradients(model, batch, recipe, device, mixed: bool) -> tuple[float, torch.Tensor]:
    """Loss and flattened gradient of one batch (no update)."""
    model.zero_grad(set_to_none=True)
    loss = batch_loss(model, batch, recipe=recipe, threshold=0.1, device=device,
                      mixed_precision=mixed)
    loss.backward()
    return float(loss.detach()), torch.cat([p.grad.flatten() for p in model.parameters()])


def main() -> None:
    """Print seconds per training step in float32 and bfloat16 and their ratio."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="default")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    recipe = get_recipe(args.recipe)
    sim = Recipe(kind=recipe.kind, shape=recipe.shape, dims=recipe.dims,
                 photons=tuple(recipe.photons))
    items = NetworkItems(SimulatedDataset(sim, args.batch, 123_000_000), truths=True)
    batch = {k: torch.stack([items[i][k] for i in range(args.batch)]) for k in items[0]}
    torch.manual_seed(0)
    model = PhaseNet(recipe.model_config()).to(device)
    use_cpu_fast_layout(model, device)
    model.train()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-5)

    def step(mixed: bool) -> None:
        optimiser.zero_grad(set_to_none=True)
        batch_loss(model, batch, recipe=recipe, threshold=0.1, device=device,
                   mixed_precision=mixed).backward()
        optimiser.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.repeat):
        for mixed in (False, True):
            step(mixed)  # warm-up of this precision's kernels
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step(mixed)
            times[mixed].append((time.perf_counter() - t0) / args.steps)
    loss32, g32 = gradients(model, batch, recipe, device, False)
    loss16, g16 = gradients(model, batch, recipe, device, True)
    _, g16b = gradients(model, batch, recipe, device, True)
    cosine = float(torch.nn.functional.cosine_similarity(g32, g16, dim=0))
    t32, t16 = statistics.median(times[False]), statistics.median(times[True])
    print(f"recipe {args.recipe} ({recipe.dims}D, {recipe.shape}, width {recipe.width}), "
          f"batch {args.batch}, {device}, {args.threads} threads, torch {torch.__version__}")
    print("| precision | s / step (median of rounds) | rounds |")
    print("|---|---|---|")
    print(f"| float32 | {t32:.3f} | {', '.join(f'{t:.3f}' for t in times[False])} |")
    print(f"| bfloat16 autocast | {t16:.3f} | {', '.join(f'{t:.3f}' for t in times[True])} |")
    print(f"speed-up {t32 / t16:.2f}x; loss {loss32:.5f} (float32) / {loss16:.5f} (bfloat16); "
          f"gradient cosine {cosine:.4f}; bfloat16 gradients repeat exactly: "
          f"{bool(torch.equal(g16, g16b))}")


if __name__ == "__main__":
    main()
