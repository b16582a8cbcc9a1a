"""The paper presets at AVE size: every stage's wall time, memory and reads, projected.

1. **Store.** A store of the real size and dtype: the synthetic generator with AVE's split
   sizes (3339 / 402 / 402 videos, 178 background-only), every feature file then rewritten
   as contiguous float64 like the official release (visual maps 8.3 GB = 7.7 GiB). It is
   built once into ``--store`` and reused while complete (a ``COMPLETE`` marker is written
   last).
2. **Chain.** For each preset (``presets/<name>-paper.yaml``, or ``default``: ``params.yaml``
   on its synthetic data) and each of ``--precisions``, the stage chain (or ``--stages``)
   runs in its own directory, with ``data.source: local`` on that store, on ``--device``.
   Every stage is a fresh process. Bounded (``--steps`` > 0): ``--epochs`` epochs per
   training stage, each of its first ``--steps`` mini-batches, and every forward pass over
   a dataset (validation, evaluation, ``refine``'s pseudo-labels) of its first ``--steps``
   batches, the rest left zero; the bench wraps these in the stage's process and projects
   the whole from the share done. ``synthesize``, ``download``, ``pool`` and ``database``
   read only the data params and run once per data source.
3. **Figures.** Per stage: wall seconds; for training stages the set-up seconds (wall minus
   the epochs), the seconds per step and of one full epoch (the steps of a full epoch plus
   the whole validation pass, from the epochs after the first), the projected wall time of
   the preset's epochs, the training videos per second and the GFLOP per step; the peak
   RSS of the stage process (``VmHWM``) and of its largest loader worker, the bytes it read
   (``rchar``: through the page cache or not) and, on a GPU, the peak GPU memory. Then per
   preset: the projected wall time of the whole preset here and on one GPU
   (:func:`project_gpu`, from the FLOPs and operators counted in the first epoch); with
   unbounded steps, the test metrics of each evaluated model (to compare precisions).

Usage, from the repository root (``nice`` it on a shared machine)::

    python -m bench.scale --store /path/to/store [--presets ave dpnet edrnet default]
        [--epochs 2] [--steps 3] [--workers 2] [--device cpu] [--precisions fp32 bf16]
        [--stages download database augment train@sel] [--workdir DIR] [--json PATH]
"""

import argparse
import contextlib
import itertools
import json
import multiprocessing
import os
import resource
import runpy
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch
import yaml
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from pipeline import hooks
from pipeline.config.presets import merged
from pipeline.data import store
from pipeline.data.synthetic import generate_synthetic
from pipeline.hooks import Hooks
from pipeline.io import atomic_path, write_json
from pipeline.training.precision import PRECISIONS

REPO = Path(__file__).resolve().parents[1]
REAL_SIZES = {"n_train": 3339, "n_val": 402, "n_test": 402, "n_background": 178}
FEATURE_FILES = (store.AUDIO, store.VISUAL, store.AUDIO_NOISY, store.VISUAL_NOISY)
MARKER = "COMPLETE"
COPY_BLOCK = 32  # videos per block when rewriting a feature file (64 MB of float64 maps)
PRESETS = ("ave", "dpnet", "edrnet", "default")  # default: params.yaml as it is
HEADLINE = ("accuracy", "weighted_f1", "non_ave_f1", "ave_f1")
CHAIN = (
    ("synthesize", ""),
    ("download", ""),
    ("pool", ""),
    ("database", ""),
    ("augment", ""),
    ("train", "sel"),
    ("train", "wsel"),
    ("refine", ""),
    ("retrain", ""),
    ("evaluate", "sel"),
    ("evaluate", "wsel"),
    ("evaluate", "wsel_refined"),
    ("report", ""),
)
TRAINED = {("train", "sel"): "sel", ("train", "wsel"): "wsel", ("retrain", ""): "wsel_refined"}
COUNTED = ("refine", "evaluate")  # stages whose FLOPs are counted whole
SHARED = ("synthesize", "download", "pool", "database")  # read only data params: run once, linked
SHARED_OUTPUTS = {
    "synthesize": "data/synthetic",
    "download": "data/ave",
    "pool": "data/pooled",
    "database": "data/db",
}
MB = 2**20


def to_float64(path: Path) -> None:
    """Rewrite a feature file as one contiguous float64 dataset, block by block."""
    with h5py.File(path, "r") as source, atomic_path(path) as tmp, h5py.File(tmp, "w") as out:
        data = source[store.FEATURE_KEY]
        copy = out.create_dataset(store.FEATURE_KEY, shape=data.shape, dtype=np.float64)
        for start in range(0, data.shape[0], COPY_BLOCK):
            copy[start : start + COPY_BLOCK] = data[start : start + COPY_BLOCK]


def build_store(root: Path) -> float | None:
    """Build the real-size store in ``root`` unless it is complete; the seconds it took."""
    if (root / MARKER).is_file():
        return None
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    start = time.perf_counter()
    print(f"building a real-size store in {partial} ...", flush=True)
    generate_synthetic(partial, seed=0, **REAL_SIZES)
    for name in FEATURE_FILES:
        to_float64(partial / name)
        print(f"  {name}: float64, {(partial / name).stat().st_size / 1e9:.2f} GB", flush=True)
    (partial / MARKER).write_text("built by bench.scale\n")
    shutil.rmtree(root, ignore_errors=True)
    partial.rename(root)
    return time.perf_counter() - start


# --- in the stage's process ---------------------------------------------------------------


class OpCounter(TorchDispatchMode):
    """Counts the ATen operators dispatched (about the kernels a GPU would launch)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def counting(into: dict):
    """Count FLOPs (matrix products, convolutions) and operators of the enclosed code."""
    flops, ops = FlopCounterMode(display=False), OpCounter()
    with flops, ops:
        yield
    into["flop"] = into.get("flop", 0) + flops.get_total_flops()
    into["ops"] = into.get("ops", 0) + ops.ops


class _Bounded:
    """A training loader cut to its first ``steps`` batches per epoch (``len`` stays whole)."""

    def __init__(self, loader, steps: int) -> None:
        self.loader, self.steps = loader, steps
        self.dataset, self.generator = loader.dataset, loader.generator

    def __iter__(self):
        return itertools.islice(iter(self.loader), self.steps)

    def __len__(self) -> int:
        return len(self.loader)


class _Bench(Hooks):
    """Bound and time the model's work in a stage's process (:mod:`pipeline.hooks`).

    With ``steps`` > 0: each training epoch takes its first ``steps`` batches, and each
    forward pass over a dataset (validation, evaluation, ``refine``'s pseudo-labels) its
    first ``steps`` batches, the other videos' outputs left zero; ``passes`` records each
    such pass's seconds and share of videos, from which the whole pass is projected. The
    first epoch's training steps and validation have their FLOPs and operators counted.
    Maps read from file are counted (as stored, float64 for AVE) in shared memory, so
    that reads in DataLoader workers count too.
    """

    def __init__(self, steps: int, epochs: list[dict], counts: dict, passes: list[dict]) -> None:
        self.steps, self.epochs, self.counts, self.passes = steps, epochs, counts, passes
        self.maps_read = multiprocessing.Value("q", 0)  # bytes, shared with forked workers

    def read(self, nbytes: int) -> None:
        with self.maps_read.get_lock():
            self.maps_read.value += nbytes

    def training_loader(self, loader):
        return _Bounded(loader, self.steps) if self.steps else loader

    def epoch(self, run, loader) -> float:
        start, read = time.perf_counter(), self.maps_read.value
        first = not self.epochs
        with counting(self.counts.setdefault("train", {})) if first else contextlib.nullcontext():
            loss = run()
        done = min(len(loader), getattr(loader, "steps", len(loader)))
        self.epochs.append(
            {
                "train_s": time.perf_counter() - start,
                "steps": done,
                "full_steps": len(loader),
                "maps_mb_per_step": (self.maps_read.value - read) / MB / done,
            }
        )
        return loss

    def _record(self, seconds: float, done: int, total: int, read: int) -> None:
        maps_mb = read / MB * total / done
        self.passes.append({"s": seconds, "done": done, "total": total, "maps_full_mb": maps_mb})
        epochs = self.epochs
        if epochs and "val_s" not in epochs[-1]:
            epochs[-1].update({"val_s": seconds, "val_full_s": seconds * total / done})
            epochs[-1]["val_maps_mb"] = maps_mb
            self.counts.setdefault("val", {}).setdefault("ratio", total / done)

    def forward_pass(self, run, loader):
        total = len(loader.dataset)
        start, read = time.perf_counter(), self.maps_read.value
        batches = list(itertools.islice(loader, self.steps)) if self.steps else loader
        first = len(self.epochs) == 1 and "val_s" not in self.epochs[0]
        counted = counting(self.counts.setdefault("val", {})) if first else None
        with counted or contextlib.nullcontext():
            scores = run(batches)
        self._record(time.perf_counter() - start, len(scores), total, self.maps_read.value - read)
        full = np.zeros((total, *scores.shape[1:]), dtype=scores.dtype)
        full[: len(scores)] = scores
        return full

    def slice_labels(self, run, videos, partners, batch_size):
        k = min(len(videos), self.steps * batch_size) if self.steps else len(videos)
        start, read = time.perf_counter(), self.maps_read.value
        sets = run(videos[:k], partners[:k])
        self._record(time.perf_counter() - start, k, len(videos), self.maps_read.value - read)
        full = np.zeros((len(videos), *sets.shape[1:]), dtype=bool)
        full[:k] = sets
        return full


def _proc(name: str, key: str) -> int:
    """A field of ``/proc/self/<name>`` (kB in ``status``, bytes in ``io``)."""
    for line in Path("/proc/self", name).read_text().splitlines():
        field, _, value = line.partition(":")
        if field == key:
            return int(value.split()[0])
    raise KeyError(key)


def child(stage: str, argument: str, steps: int, stats: Path) -> None:
    """Run ``stages.<stage>`` here, bounded and timed, and write its figures to ``stats``.

    A training stage has its first epoch's FLOPs and operators counted; ``refine`` and
    ``evaluate`` are counted whole.
    """
    epochs: list[dict] = []
    counts: dict = {}
    passes: list[dict] = []
    hooks.install(_Bench(steps, epochs, counts, passes))
    sys.argv = [f"stages/{stage}.py"] + ([argument] if argument else [])
    counted = stage in COUNTED
    whole = counting(counts.setdefault("stage", {})) if counted else contextlib.nullcontext()
    status = 0
    try:
        with whole:
            runpy.run_module(f"stages.{stage}", run_name="__main__")
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        write_json(
            stats,
            {
                "status": status,
                "peak_rss_mb": _proc("status", "VmHWM") / 1024,
                "worker_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                "read_mb": _proc("io", "rchar") / MB,
                "storage_read_mb": _proc("io", "read_bytes") / MB,
                "gpu_peak_mb": torch.cuda.max_memory_allocated() / MB
                if torch.cuda.is_available()
                else None,
                "epochs": epochs,
                "counts": counts,
                "passes": passes,
            },
        )
    sys.exit(status)


# --- the chain ------------------------------------------------------------------------------


def preset_params(
    name: str, root: Path | None, epochs: int, workers: int, device: str
) -> tuple[dict, dict]:
    """The preset's params on ``device``, epochs bounded (0: as they are); its full epochs.

    A paper preset (applied to ``params.yaml``) reads the store ``root``; ``default`` is
    ``params.yaml`` as it is (the embedded synthetic data).
    """
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    if name != "default":
        preset = yaml.safe_load((REPO / f"presets/{name}-paper.yaml").read_text())
        params = merged(params, preset)
        params["data"].update({"source": "local", "local_dir": str(root)})
    params["train"].update({"device": device, "workers": workers})
    params["evaluate"]["device"] = device
    full = {"sel": params["train"]["epochs"], "wsel": params["train"]["epochs"]}
    full["wsel_refined"] = params["refine"]["retrain_epochs"]
    if epochs:
        params["train"]["epochs"] = epochs
        params["refine"]["retrain_epochs"] = epochs
    return params, full


def epoch_figures(epochs: list[dict]) -> dict:
    """Seconds of one full epoch from bounded ones (the first one only if it is alone)."""
    steady = epochs[1:] or epochs
    per_step = sum(e["train_s"] for e in steady) / sum(e["steps"] for e in steady)
    val_s = sum(e.get("val_full_s", 0.0) for e in steady) / len(steady)
    return {
        "s_per_step": per_step,
        "full_steps": steady[0]["full_steps"],
        "s_per_epoch": per_step * steady[0]["full_steps"] + val_s,
        "val_s": val_s,
        "loops_s": sum(e["train_s"] + e.get("val_s", 0.0) for e in epochs),
    }


def pass_figures(passes: list[dict]) -> dict:
    """Measured and projected seconds of a stage's bounded forward passes."""
    measured = sum(p["s"] for p in passes)
    return {
        "passes_s": measured,
        "passes_full_s": sum(p["s"] * p["total"] / p["done"] for p in passes),
    }


def _link_tree(source: Path, dest: Path) -> None:
    """Hard-link the files of ``source`` into ``dest`` (a shared stage's outputs)."""
    shutil.copytree(source, dest, copy_function=os.link)


def run_chain(name: str, precision: str, args: argparse.Namespace, shared: dict) -> list[dict]:
    """Run the stages of preset ``name`` (``--stages``); one row of figures per stage.

    ``synthesize``, ``download``, ``pool`` and ``database`` read only the data params: the
    first chain with those runs them and the later ones link their outputs (``shared``
    keeps their rows and directory).
    """
    chain = name if len(args.precisions) == 1 else f"{name}/{precision}"
    workdir = args.workdir / chain.replace("/", "-")
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    params, full = preset_params(name, args.store, args.epochs, args.workers, args.device)
    params["train"]["precision"] = params["evaluate"]["precision"] = precision
    (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": str(REPO), "CI": "1"}
    rows = []
    for stage, argument in CHAIN:
        label = f"{stage}@{argument}" if argument else stage
        if args.stages and label not in args.stages:
            continue
        data = json.dumps(params["data"], sort_keys=True)  # shared stages depend on it only
        if stage in SHARED and (stage, data) in shared:
            first, row = shared[stage, data]
            out = SHARED_OUTPUTS[stage]
            _link_tree(first / out, workdir / out)
            rows.append({**row, "preset": chain, "shared": True})
            continue
        stats = workdir / f".{label}.json"
        command = [sys.executable, "-m", "bench.scale", "--child", stage, argument]
        command += ["--steps", str(args.steps), "--stats", str(stats)]
        print(f"[{chain}] {label} ...", flush=True)
        start = time.perf_counter()
        result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if result.returncode != 0:
            sys.exit(f"[{chain}] {label} failed:\n{result.stdout}\n{result.stderr}")
        figures = json.loads(stats.read_text())
        row = {"preset": chain, "stage": label, "wall_s": wall, **figures, "projected_s": wall}
        task = TRAINED.get((stage, argument))
        if task is not None and figures["epochs"]:
            row.update(epoch_figures(figures["epochs"]))
            row["setup_s"] = wall - row["loops_s"]
            row["full_epochs"] = full[task]
            row["projected_s"] = row["setup_s"] + full[task] * row["s_per_epoch"]
            videos = json.loads((workdir / "metrics" / "train" / f"{task}.json").read_text())
            row["videos_per_s"] = videos["train_videos"] / row["full_steps"] / row["s_per_step"]
        elif figures["passes"]:
            row.update(pass_figures(figures["passes"]))
            row["projected_s"] = wall - row["passes_s"] + row["passes_full_s"]
        if stage == "evaluate":
            results = json.loads(
                (workdir / "metrics" / "evaluate" / f"{argument}.json").read_text()
            )
            row["metrics"] = {key: results["model"][key] for key in HEADLINE}
        if stage in SHARED:
            shared[stage, data] = (workdir, row)
        rows.append(row)
        extra = f", {row['videos_per_s']:.0f} videos/s" if "videos_per_s" in row else ""
        if figures["gpu_peak_mb"] is not None:
            extra += f", peak GPU memory {figures['gpu_peak_mb']:.0f} MB"
        print(f"[{chain}] {label}: {wall:.1f} s, peak RSS {figures['peak_rss_mb']:.0f} MB{extra}")
    return rows


def gpu_seconds(
    counts: dict, tflops: float, launch_s: float, maps_mb: float = 0.0, read_mbps: float = 1.0
) -> float:
    """Projected GPU seconds of counted work: compute, operator launches or reading the
    maps from file, whichever is the slowest (they overlap)."""
    compute = counts["flop"] / (tflops * 1e12)
    return max(compute, counts["ops"] * launch_s, maps_mb / read_mbps)


def project_gpu(rows: list[dict], args: argparse.Namespace) -> dict[str, dict]:
    """Each preset's projected wall time on one GPU, from the counted FLOPs and operators.

    A training stage's epoch is its full steps at the first epoch's FLOPs, operators and
    maps read per step, plus one validation pass; ``refine`` and ``evaluate`` are counted
    whole. Each piece takes the longest of its FLOPs at ``--gpu-utilization`` of the peak,
    its operators at ``--launch-us`` each and its maps at ``--read-gbps`` (the loader
    workers' float64-to-float32 read rate on the GPU's host). The CPU-side work (stages
    without a model, and the set-up of the training stages: data, pooling, loaders) is
    taken as measured here.
    """
    read_mbps = args.read_gbps * 1e9 / MB
    projections = {}
    for preset in dict.fromkeys(r["preset"] for r in rows):
        total = {"fp32": 0.0, "bf16": 0.0}
        for r in (r for r in rows if r["preset"] == preset):
            counts = r.get("counts", {})
            for precision, peak in (("fp32", args.gpu_fp32_tflops), ("bf16", args.gpu_bf16_tflops)):
                pace = (peak * args.gpu_utilization, args.launch_us * 1e-6)
                if "train" in counts:
                    first = r["epochs"][0]
                    step = {k: v / first["steps"] for k, v in counts["train"].items()}
                    val = {k: v * counts["val"]["ratio"] for k, v in counts["val"].items()}
                    epoch = r["full_steps"] * gpu_seconds(
                        step, *pace, first["maps_mb_per_step"], read_mbps
                    )
                    epoch += gpu_seconds(val, *pace, first.get("val_maps_mb", 0.0), read_mbps)
                    total[precision] += r["setup_s"] + r["full_epochs"] * epoch
                elif "stage" in counts:
                    ratio = r.get("passes_full_s", 1.0) / r.get("passes_s", 1.0)
                    whole = {k: v * ratio for k, v in counts["stage"].items()}
                    maps = sum(p["maps_full_mb"] for p in r["passes"])
                    total[precision] += gpu_seconds(whole, *pace, maps, read_mbps)
                else:
                    total[precision] += r["wall_s"]
        projections[preset] = total
    return projections


def _cell(value, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_metrics(rows: list[dict]) -> None:
    """Test metrics of each evaluated model (with unbounded steps), to compare precisions."""
    print(f"\n| chain | task | {' | '.join(HEADLINE)} |")
    print("|---|---|" + "---:|" * len(HEADLINE))
    for r in (r for r in rows if "metrics" in r):
        cells = " | ".join(f"{100 * r['metrics'][key]:.1f}" for key in HEADLINE)
        print(f"| {r['preset']} | {r['stage'].split('@')[1]} | {cells} |")


def print_table(rows: list[dict], projections: dict[str, dict]) -> None:
    """The markdown tables of the README: per stage here, and per preset on a GPU."""
    print(
        "| preset | stage | wall s | set-up s | s/step | steps/epoch | s/epoch | epochs "
        "| projected h | peak RSS MB | worker RSS MB | read GB | maps MB/step | GFLOP/step "
        "| videos/s | GPU peak MB |"
    )
    print("|---|---|" + "---:|" * 14)
    for r in rows:
        if r.get("shared"):
            continue
        train = r.get("counts", {}).get("train")
        flop = train["flop"] / r["epochs"][0]["steps"] / 1e9 if train else None
        maps = r["epochs"][0]["maps_mb_per_step"] if r.get("epochs") else None
        print(
            f"| {r['preset']} | {r['stage']} | {r['wall_s']:.1f} | {_cell(r.get('setup_s'))} "
            f"| {_cell(r.get('s_per_step'), 2)} | {r.get('full_steps', '-')} "
            f"| {_cell(r.get('s_per_epoch'))} | {r.get('full_epochs', '-')} "
            f"| {r['projected_s'] / 3600:.2f} | {r['peak_rss_mb']:.0f} "
            f"| {r['worker_peak_rss_mb']:.0f} | {r['read_mb'] / 1024:.1f} | {_cell(maps, 0)} "
            f"| {_cell(flop)} "
            f"| {_cell(r.get('videos_per_s'))} | {_cell(r.get('gpu_peak_mb'), 0)} |"
        )
    print("\n| preset | projected here h | projected GPU fp32 h | projected GPU bf16 h |")
    print("|---|---:|---:|---:|")
    for preset, gpu in projections.items():
        here = sum(r["projected_s"] for r in rows if r["preset"] == preset)
        print(
            f"| {preset} | {here / 3600:.1f} | {gpu['fp32'] / 3600:.2f} "
            f"| {gpu['bf16'] / 3600:.2f} |"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, help="real-size store (built once, cached)")
    parser.add_argument("--presets", nargs="+", choices=PRESETS, default=list(PRESETS))
    parser.add_argument("--epochs", type=int, default=2, help="epochs per stage (0: all)")
    parser.add_argument("--steps", type=int, default=3, help="batches per epoch (0: all)")
    parser.add_argument("--workers", type=int, default=2, help="train.workers (maps)")
    parser.add_argument("--device", default="cpu", help="train/evaluate device (cpu, cuda)")
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=["fp32"])
    labels = [f"{stage}@{arg}" if arg else stage for stage, arg in CHAIN]
    parser.add_argument("--stages", nargs="+", choices=labels, help="run only these")
    parser.add_argument("--workdir", type=Path, help="where the chains run (default: temp)")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    parser.add_argument("--build-only", action="store_true", help="only build the store")
    gpu = parser.add_argument_group("GPU projection (assumptions)")
    gpu.add_argument("--gpu-fp32-tflops", type=float, default=67.0, help="H100 SXM FP32")
    gpu.add_argument("--gpu-bf16-tflops", type=float, default=989.0, help="dense BF16")
    gpu.add_argument("--gpu-utilization", type=float, default=0.4, help="share of the peak")
    gpu.add_argument("--launch-us", type=float, default=10.0, help="µs per operator")
    gpu.add_argument("--read-gbps", type=float, default=4.0, help="maps read, GB/s")
    parser.add_argument("--child", nargs=2, metavar=("STAGE", "ARG"), help=argparse.SUPPRESS)
    parser.add_argument("--stats", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is None and args.store is None and set(args.presets) != {"default"}:
        parser.error("--store is required for the paper presets")
    if min(args.epochs, args.steps, args.workers) < 0:
        parser.error("--epochs, --steps and --workers must be >= 0")
    return args


def main() -> None:
    args = parse_args()
    if args.child:
        child(*args.child, args.steps, args.stats)
    seconds = build_store(args.store) if args.store else None
    if seconds is not None:
        print(f"store built in {seconds:.0f} s")
    if args.build_only:
        return
    remove = args.workdir is None
    args.workdir = args.workdir or Path(tempfile.mkdtemp(prefix="avel-bench-scale-"))
    shared: dict = {}
    try:
        rows = [
            row
            for name in args.presets
            for precision in args.precisions
            for row in run_chain(name, precision, args, shared)
        ]
    finally:
        if remove:
            shutil.rmtree(args.workdir)
    projections = project_gpu(rows, args)
    print_table(rows, projections)
    if args.steps == 0:
        print_metrics(rows)
    if args.json:
        summary = {"epochs": args.epochs, "steps": args.steps, "device": args.device}
        assumptions = {
            k: v for k, v in vars(args).items() if k.startswith(("gpu_", "launch", "read"))
        }
        write_json(
            args.json,
            {**summary, "assumptions": assumptions, "rows": rows, "gpu": projections},
        )


if __name__ == "__main__":
    main()
