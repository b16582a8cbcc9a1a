"""Training step of PSP and CMRAN beside their official code, in one process, alternating rounds.

A training step is forward, loss, backward and Adam on a batch already in memory (random
features of the official shapes: maps ``(B, 10, 7, 7, 512)``, audio ``(B, 10, 128)``), at the
papers' settings (:data:`bench.map_models_throughput.PAPER`) and the same number of threads
for every model. Ours is :func:`bench.map_models_throughput.train_step` (the SEL loss with
PSP's AVPS term, CMRAN's relevance and class losses). Given a checkout of the official code
(fetched by the user: ``jasongief/PSP_CVPR_2021``, ``FloretCat/CMRAN``), the official
network is imported from it at run time, its ``.cuda()`` calls made no-ops, and its own SEL
step (``fully_supervised_main.py``: cross-entropy + 100 x ``measure.AVPSLoss``;
``supv_main.py``: ``BCEWithLogitsLoss`` + ``CrossEntropyLoss``) is timed beside ours: each
round runs ``--steps`` steps of every model in turn, so that a change of the machine's load
hits them alike. The script prints, per model and batch, the videos/s of the median round,
the ratio ours / official of the wall seconds (median of the rounds' ratios) and the same
ratio of the CPU seconds the steps consumed (:func:`alternate`). Without a checkout it times
ours alone. Nothing is fetched, and no official code is stored.

``--floor`` adds the compute floor of each step: its matrix-product FLOPs
(:func:`~bench.map_models_throughput.count_flops`, ours and the official step's) at the rate
of one map-shaped matrix product (:func:`gemm_step`, in bfloat16 under ``--precision
bf16``) timed in the same rounds. No step doing those products can run faster than its
FLOPs at that rate, so official seconds / floor seconds is the highest ratio ours /
official that any implementation doing them can reach on this machine (:func:`floor_line`).

The official CMRAN trains in float64 (``model.double()`` in ``supv_main.py``), the official
PSP in float32; ``--dtype`` sets the precision of every model alike (default float32), and
``--official-dtype`` overrides it for the official models (for example, float64 to time
CMRAN as its code trains). ``--precision bf16`` runs every step under the pipeline's
``train.precision`` autocast (:func:`~pipeline.training.precision.autocast`: matrix products
in bfloat16), and ``--official-precision`` overrides it for the official steps, which have
no such option of their own (``--official-precision fp32`` times them as they ship).

Usage, from the repository root::

    OMP_NUM_THREADS=2 python -m bench.official_speed [--official-psp DIR]
        [--official-cmran DIR] [--models psp cmran] [--psp-batches 64 128]
        [--cmran-batches 32] [--rounds 5] [--steps 2] [--dtype float32]
        [--precision fp32] [--official-precision fp32] [--floor]
"""

import argparse
import contextlib
import importlib
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from bench.map_models_throughput import PAPER, count_flops, train_step
from pipeline.models.psp import avps_target
from pipeline.training.precision import autocast

T, AUDIO_DIM, MAP = 10, 128, (7, 7, 512)
N_CLASSES = 29  # background last
DTYPES = {"float32": torch.float32, "float64": torch.float64}
Step = Callable[[], None]


def make_batch(batch: int, dtype: torch.dtype, seed: int = 0) -> dict:
    """A batch of random features of the official shapes, and random segment classes."""
    generator = torch.Generator().manual_seed(seed)
    return {
        "audio": torch.rand(batch, T, AUDIO_DIM, generator=generator, dtype=dtype),
        "visual": torch.rand(batch, T, *MAP, generator=generator, dtype=dtype),
        "labels": torch.randint(N_CLASSES, (batch, T), generator=generator),
    }


def our_step(name: str, data: dict, dtype: torch.dtype) -> Step:
    """One of our training steps (:func:`bench.map_models_throughput.train_step`)."""
    torch.manual_seed(0)
    model = PAPER[name]["model"]().to(dtype).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=PAPER[name]["lr"])
    return lambda: train_step(model, optimizer, data)


@contextlib.contextmanager
def cpu_shims() -> Iterator[None]:
    """Make ``Tensor.cuda`` and ``Module.cuda`` no-ops, as the official code calls them."""
    saved = torch.Tensor.cuda, nn.Module.cuda
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    nn.Module.cuda = lambda self, *args, **kwargs: self
    try:
        yield
    finally:
        torch.Tensor.cuda, nn.Module.cuda = saved


def import_official(checkout: Path, module: str, marker: str):
    """Import ``module`` from an official checkout; a clear error when it is not one."""
    if not (checkout / marker).is_file():
        sys.exit(f"official_speed: {checkout}: expected the official checkout with {marker}")
    sys.path.insert(0, str(checkout))
    try:
        return importlib.import_module(module)
    finally:
        sys.path.remove(str(checkout))


def official_psp_step(checkout: Path, data: dict, dtype: torch.dtype) -> Step:
    """The official fully supervised PSP step (``fully_supervised_main.py``'s ``train``)."""
    network = import_official(checkout, "fully_model", "fully_model.py")
    measure = import_official(checkout, "measure", "measure.py")
    torch.manual_seed(0)
    with cpu_shims():
        model = network.psp_net().to(dtype).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=PAPER["psp"]["lr"])
    labels = data["labels"]
    avps = avps_target(labels, N_CLASSES - 1).to(dtype)  # the official loader's AVPS target

    def step() -> None:
        with cpu_shims():
            model.zero_grad()
            _, scores, similarity = model(data["audio"], data["visual"], 0.099)
            loss = F.cross_entropy(scores.permute(0, 2, 1), labels)
            (loss + 100 * measure.AVPSLoss(similarity, avps)).backward()
            optimizer.step()

    return step


def official_cmran_step(checkout: Path, data: dict, dtype: torch.dtype) -> Step:
    """The official CMRAN SEL step (``supv_main.py``'s ``train_epoch``)."""
    network = import_official(checkout, "model.main_model", "model/main_model.py")
    torch.manual_seed(0)
    with cpu_shims():
        model = network.supv_main_model().to(dtype).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=PAPER["cmran"]["lr"])
    one_hot = F.one_hot(data["labels"], N_CLASSES).to(dtype)  # (B, T, 29)
    is_event, event_index = one_hot[:, :, :-1].max(-1)  # (B, T) each
    event = event_index.max(-1)[0]  # (B,)

    def step() -> None:
        with cpu_shims():
            relevance, class_logits = model(data["visual"], data["audio"])
            relevance = relevance.transpose(1, 0).squeeze().contiguous()  # (B, T)
            loss = F.binary_cross_entropy_with_logits(relevance, is_event)
            (loss + F.cross_entropy(class_logits, event)).backward()
            optimizer.step()
            optimizer.zero_grad()

    return step


def alternate(steps: dict[str, Step], rounds: int, per_round: int) -> dict[str, list[tuple]]:
    """``(wall, CPU)`` seconds per step of each of ``steps`` in each round, timed in turn.

    The CPU seconds (``time.process_time``, all the process's threads) are what the step
    consumed, whatever share of the cores the machine's load left it; with one thread they
    do not grow with the load, as the wall seconds do.
    """
    for step in steps.values():
        step()  # warm-up: first-call allocations, oneDNN primitives
    seconds: dict[str, list[tuple]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(per_round):
                step()
            seconds[name].append(
                ((time.perf_counter() - wall) / per_round, (time.process_time() - cpu) / per_round)
            )
    return seconds


def report(name: str, batch: int, seconds: dict[str, list[tuple]]) -> str:
    """``model batch ours-v/s [official-v/s ratio cpu-ratio]``: medians over the rounds.

    The videos/s are the batch over the median round's wall seconds; the ratios are the
    medians of the rounds' ratios of wall seconds and of CPU seconds, official / ours.
    """
    ours = statistics.median(wall for wall, _ in seconds["ours"])
    line = f"{name:<6} {batch:>5} {batch / ours:>9.1f}"
    if "official" not in seconds:
        return line
    official = statistics.median(wall for wall, _ in seconds["official"])
    pairs = list(zip(seconds["ours"], seconds["official"], strict=True))
    wall_ratio = statistics.median(o[0] / u[0] for u, o in pairs)
    cpu_ratio = statistics.median(o[1] / u[1] for u, o in pairs)
    return f"{line} {batch / official:>13.1f} {wall_ratio:>14.2f} {cpu_ratio:>10.2f}"


GEMM_ROWS, GEMM_BLOCK = 15680, 1024  # CMRAN's paper batch: 32 videos x 10 segments x 49 regions
GEMM_FLOPS = 2 * GEMM_ROWS * 512 * 512


def gemm_step(dtype: torch.dtype) -> Step:
    """One map-shaped matrix product ``(15680, 512) x (512, 512)`` (:data:`GEMM_FLOPS`).

    It runs in :data:`GEMM_BLOCK`-row blocks written into one output, the faster form on
    the reference machine (about 180 GFLOP/s against 150 for the whole product, 2 threads,
    float32). Timed in the rounds beside the steps, its rate is the rate the machine's
    matrix products reach under the same load.
    """
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(GEMM_ROWS, 512, generator=generator, dtype=dtype)
    weight = torch.rand(512, 512, generator=generator, dtype=dtype)
    out = torch.empty(GEMM_ROWS, 512, dtype=dtype)

    def step() -> None:
        for start in range(0, GEMM_ROWS, GEMM_BLOCK):
            rows = slice(start, start + GEMM_BLOCK)
            torch.mm(x[rows], weight, out=out[rows])

    return step


def floor_line(flops: dict[str, int], seconds: dict[str, list[tuple]]) -> str:
    """``GFLOP/step``, the product rate, the floor and official / floor: medians of the rounds.

    In each round the floor is our step's FLOPs at the rate of that round's
    :func:`gemm_step`; official / floor is the official step's wall seconds over it, the
    highest ratio ours / official reachable at that rate.
    """
    rates = [GEMM_FLOPS / wall for wall, _ in seconds["gemm"]]
    floors = [flops["ours"] / rate for rate in rates]
    line = f"  floor: GFLOP/step ours {flops['ours'] / 1e9:.1f}"
    if "official" in flops:
        line += f", official {flops['official'] / 1e9:.1f}"
    line += (
        f"; products at {statistics.median(rates) / 1e9:.0f} GFLOP/s: "
        f"floor {statistics.median(floors) * 1e3:.0f} ms"
    )
    if "official" in seconds:
        pairs = zip(seconds["official"], floors, strict=True)
        ratio = statistics.median(official[0] / floor for official, floor in pairs)
        line += f", official/floor {ratio:.2f}"
    return line


OFFICIAL = {"psp": official_psp_step, "cmran": official_cmran_step}
CPU = torch.device("cpu")


def under(precision: str, step: Step) -> Step:
    """``step`` under the ``train.precision`` autocast ``precision`` on the CPU."""

    def run() -> None:
        with autocast(CPU, precision):
            step()

    return run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official-psp", type=Path, default=None)
    parser.add_argument("--official-cmran", type=Path, default=None)
    parser.add_argument("--models", nargs="+", choices=sorted(PAPER), default=["psp", "cmran"])
    parser.add_argument("--psp-batches", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--cmran-batches", type=int, nargs="+", default=[32])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=2, help="steps per model per round")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    parser.add_argument("--official-dtype", choices=sorted(DTYPES), default=None)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--official-precision", choices=("fp32", "bf16"), default=None)
    parser.add_argument("--floor", action="store_true", help="also print each step's floor")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    dtype = DTYPES[args.dtype]
    official_dtype = DTYPES[args.official_dtype or args.dtype]
    checkouts = {"psp": args.official_psp, "cmran": args.official_cmran}
    official_precision = args.official_precision or args.precision
    print(
        f"threads: {torch.get_num_threads()}, torch {torch.__version__}, ours {args.dtype}, "
        f"official {args.official_dtype or args.dtype}, autocast ours {args.precision}, "
        f"official {official_precision}, {args.rounds} rounds x {args.steps} steps"
    )
    print("model  batch  ours v/s  official v/s  ours/official  CPU ratio")
    for name in args.models:
        for batch in args.psp_batches if name == "psp" else args.cmran_batches:
            ours = our_step(name, make_batch(batch, dtype), dtype)
            steps = {"ours": under(args.precision, ours)}
            if checkouts[name] is not None:
                data = make_batch(batch, official_dtype)
                official = OFFICIAL[name](checkouts[name], data, official_dtype)
                steps["official"] = under(official_precision, official)
            if args.floor:
                flops = {model: count_flops(step) for model, step in steps.items()}
                steps["gemm"] = gemm_step(torch.bfloat16 if args.precision == "bf16" else dtype)
            seconds = alternate(steps, args.rounds, args.steps)
            print(report(name, batch, seconds), flush=True)
            if args.floor:
                print(floor_line(flops, seconds), flush=True)


if __name__ == "__main__":
    main()
