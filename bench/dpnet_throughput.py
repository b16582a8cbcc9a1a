"""DPNet training throughput, and the share of the machine's matmul FLOP/s it reaches.

At the paper's configuration (seed 001 §4: B = 4 blocks, d = 768, kernel 3, batch 48,
T = 10, VGGish audio 128, pooled VGG-19 visual 512) the script

1. measures the machine's dense float32 matmul throughput (square products of
   ``--matmul-size``, best of several timed repeats, in this process and thread pool);
2. times full training steps of ``dpnet`` (forward, SEL cross-entropy, backward, Adam
   step) after a warm-up, and reports videos per second;
3. counts a step's FLOPs analytically (:func:`dpnet_step_flops`; cross-checked against
   PyTorch's ``FlopCounterMode``, which derives the same count from the operator shapes)
   and divides the achieved FLOP/s by the measured matmul FLOP/s.

Usage, from the repository root::

    python -m bench.dpnet_throughput [--steps N] [--batch 48] [--hidden 768] [--blocks 4]
"""

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from pipeline.losses import sel_loss
from pipeline.models import build_model

T = 10
AUDIO_DIM = 128
VISUAL_DIM = 512
N_CLASSES = 29
# A DPNet node has 3 relational polymorphs (forward, backward, cross-modal): 3 query,
# 3 key and 3 value projections, plus W_1 and W_2 (seed 001 eqs 13-16).
RGCT_PROJECTIONS = 11


def dpnet_forward_macs(batch: int, hidden: int, blocks: int, kernel: int) -> int:
    """Multiply-accumulates of one DPNet forward pass (matmuls and convolutions).

    Input projections (audio and visual to ``hidden``), ``blocks`` times an RGCT layer on
    ``2T`` nodes (:data:`RGCT_PROJECTIONS` ``d x d`` products per node, plus the 3 x 3
    cross-relational attention of eqs 13-14: ``Q K^T`` is ``9d``, the relation average of
    ``Att V``, taken as ``(w^T Att) V``, is ``9 + 3d``) and two TCNs (``kernel`` taps of
    ``d x d``), the gate's ``2d -> d`` FC (eq 9) and the classifier (eq 11).
    """
    d, videos = hidden, batch
    projections = T * (AUDIO_DIM + VISUAL_DIM) * d
    rgct = 2 * T * (RGCT_PROJECTIONS * d * d + 3 * 3 * d + 3 * 3 + 3 * d)
    tcn = 2 * T * kernel * d * d
    head = T * 2 * d * d + T * d * N_CLASSES
    return videos * (projections + blocks * (rgct + tcn) + head)


def dpnet_step_flops(batch: int, hidden: int, blocks: int, kernel: int) -> int:
    """FLOPs of one training step: forward, plus a backward of twice the forward.

    The backward computes a gradient for each weight and each input of every product,
    the input projections' included: their inputs are the outputs of the input
    normalisation (:class:`pipeline.models.dpnet.InputNorm`, with LayerNorm's learnable
    affine map), not the data, so their input gradients are computed too.
    """
    return 3 * 2 * dpnet_forward_macs(batch, hidden, blocks, kernel)


def counted_step_flops(model: torch.nn.Module, batch: dict) -> int:
    """FLOPs of a forward and backward as counted by PyTorch from the operator shapes."""
    with FlopCounterMode(display=False) as counter:
        sel_loss(model(batch["audio"], batch["visual"]), batch["labels"]).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def matmul_flops_per_second(size: int, repeats: int = 5, seconds: float = 1.0) -> float:
    """Best float32 throughput of ``size x size`` products (FLOP/s)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up
    best = 0.0
    for _ in range(repeats):
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / repeats or count == 0:
            a @ b
            count += 1
        best = max(best, 2 * size**3 * count / elapsed)
    return best


def make_batch(batch: int) -> dict:
    """Random features and labels of ``batch`` videos (pooled visual features)."""
    generator = torch.Generator().manual_seed(0)
    return {
        "audio": torch.rand(batch, T, AUDIO_DIM, generator=generator),  # (B, T, A)
        "visual": torch.rand(batch, T, VISUAL_DIM, generator=generator),  # (B, T, C)
        "labels": torch.randint(0, N_CLASSES, (batch, T), generator=generator),  # (B, T)
    }


def time_steps(model: torch.nn.Module, batch: dict, steps: int, warmup: int) -> float:
    """Mean seconds of a training step (forward, loss, backward, Adam step)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    model.train()
    for index in range(warmup + steps):
        if index == warmup:
            start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        sel_loss(model(batch["audio"], batch["visual"]), batch["labels"]).backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=48)
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--kernel", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--matmul-size", type=int, default=2048)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.manual_seed(0)
    size = {"hidden": args.hidden, "blocks": args.blocks, "kernel": args.kernel}
    model = build_model("dpnet", audio_dim=AUDIO_DIM, visual_dim=VISUAL_DIM, **size)
    batch = make_batch(args.batch)
    flops = dpnet_step_flops(args.batch, args.hidden, args.blocks, args.kernel)
    counted = counted_step_flops(model, batch)
    peak = matmul_flops_per_second(args.matmul_size)
    step_s = time_steps(model, batch, args.steps, args.warmup)
    achieved = flops / step_s
    print(f"threads: {torch.get_num_threads()}, torch {torch.__version__}")
    print(f"config: batch {args.batch}, d {args.hidden}, blocks {args.blocks}, k {args.kernel}")
    print(f"step FLOPs: analytic {flops / 1e9:.2f} G, FlopCounterMode {counted / 1e9:.2f} G")
    print(f"matmul {args.matmul_size}^3 float32: {peak / 1e9:.1f} GFLOP/s")
    print(f"training step: {step_s * 1e3:.0f} ms, {args.batch / step_s:.1f} videos/s")
    print(f"achieved: {achieved / 1e9:.1f} GFLOP/s = {100 * achieved / peak:.0f}% of matmul peak")


if __name__ == "__main__":
    main()
