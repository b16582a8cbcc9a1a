"""Memory bound of the data layer at the real AVE size: training must stay under 4 GB of RAM.

The real ``visual_feature.h5`` is ``(4143, 10, 7, 7, 512)`` float64, 8.3 GB (7.7 GiB). This
script writes a store of exactly the official shapes (contiguous HDF5 like the official file,
real bytes on disk, written in blocks so that the writer never holds the array either), then
runs each scenario over the training split in a fresh subprocess, so that each peak is its own:

* ``maps``: one epoch of :class:`AVEDataset` reading the 7x7 maps lazily (batch size 64,
  shuffled), with a forward, backward and Adam step of the AVE baseline model
  (``build_model("ave", audio_dim=128, visual_dim=512, n_regions=49)``) per batch;
* ``pooled``: the pool stage's work (the whole file streamed in blocks into the pooled
  features, :func:`~pipeline.data.pooled.pool_store`, into a temporary directory), then
  one epoch over the pooled features.

Per scenario it reports the peak resident set size (``VmHWM`` of the subprocess), the wall
seconds (dataset set-up, then the batch loop), videos per second over the loop, and the
visual file read: logical MB (rows read x 2 MB), MB per wall second, and the MB that actually
came from storage (``/proc/self/io``; kernel read-ahead can make it exceed the logical MB).
A scenario passes when its peak is under ``--limit-mb`` (4096); the exit status is 1 when
one does not.

Page cache: a file just written, or read before, is served from the kernel's page cache as far
as it is still cached (``storage MB`` shows the rest). Cached pages are not part of a process's
RSS, so the bound holds either way, but the MB/s then mix memory and disk speed. ``--cold``
evicts the visual file from the page cache before each scenario to measure reads from storage.

Usage, from the repository root::

    python -m bench.memory [--dir DIR] [--batches N] [--json PATH] [--cold] [--keep]

Without ``--dir`` the store (8.6 GB) goes to a new temporary directory, removed at the end
unless ``--keep``. With ``--dir``, a complete store already there is reused as it is.
"""

import argparse
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch

from pipeline.data import store
from pipeline.data.annotations import one_hot
from pipeline.data.dataset import AVEDataset, make_loader
from pipeline.data.pooled import pool_store
from pipeline.io import atomic_path, write_json
from pipeline.losses import sel_loss
from pipeline.models import build_model

REPO = Path(__file__).resolve().parents[1]

N_VIDEOS = 4143
SPLIT_SIZES = {"train": 3339, "val": 402, "test": 402}
VISUAL_SHAPE = (N_VIDEOS, store.T, *store.OFFICIAL_MAP)
ROW_BYTES = int(np.prod(VISUAL_SHAPE[1:])) * 8  # one video of float64 maps: 2 MB
WRITE_BLOCK = 32  # rows per write of the visual file (64 MB)
BATCH_SIZE = 64
SCENARIOS = ("maps", "pooled")
MB = 1024 * 1024
STORE_FILES = (
    store.AUDIO,
    store.VISUAL,
    store.LABELS,
    *(store.order_file(split) for split in store.SPLITS),
)


def create_store(root: Path, seed: int = 0) -> None:
    """Write a store of the official shapes; the visual file block by block, contiguous."""
    rng = np.random.default_rng(seed)
    audio = rng.random((N_VIDEOS, store.T, store.OFFICIAL_AUDIO_DIM))  # (n, T, 128) float64
    store.write_array(root / store.AUDIO, store.FEATURE_KEY, audio)
    classes = rng.integers(store.N_CLASSES, size=(N_VIDEOS, store.T))  # (n, T)
    store.write_array(root / store.LABELS, store.FEATURE_KEY, one_hot(classes))
    bounds = np.cumsum([0, *SPLIT_SIZES.values()])
    rows = rng.permutation(N_VIDEOS)
    for split, start, stop in zip(SPLIT_SIZES, bounds[:-1], bounds[1:], strict=True):
        store.write_array(root / store.order_file(split), store.ORDER_KEY, rows[start:stop])
    block = rng.random((WRITE_BLOCK, *VISUAL_SHAPE[1:]))  # (b, T, 7, 7, 512), reused per block
    with atomic_path(root / store.VISUAL) as tmp, h5py.File(tmp, "w") as h5:
        maps = h5.create_dataset(store.FEATURE_KEY, shape=VISUAL_SHAPE, dtype=np.float64)
        for start in range(0, N_VIDEOS, WRITE_BLOCK):
            stop = min(start + WRITE_BLOCK, N_VIDEOS)
            maps[start:stop] = block[: stop - start]


def check_store(root: Path) -> None:
    """Refuse a store whose visual file is not of the official, real size."""
    with h5py.File(root / store.VISUAL, "r") as h5:
        shape = h5[store.FEATURE_KEY].shape
    if shape != VISUAL_SHAPE:
        sys.exit(f"{root / store.VISUAL}: expected shape {VISUAL_SHAPE}, found {shape}")


def evict_from_page_cache(path: Path) -> None:
    """Write back and drop the cached pages of ``path``, so that reading it hits storage."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _proc_kb(name: str, key: str) -> int | None:
    """A field of ``/proc/self/<name>`` (kB in ``status``, bytes in ``io``); None if absent."""
    try:
        lines = Path("/proc/self", name).read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        field, _, value = line.partition(":")
        if field == key:
            return int(value.split()[0])
    return None


def peak_rss_mb() -> float:
    """Peak resident set size of this process: ``VmHWM``, or ``ru_maxrss`` without /proc."""
    kb = _proc_kb("status", "VmHWM")
    if kb is None:
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024


def storage_read_mb() -> float | None:
    """Bytes this process has caused to be fetched from storage, in MB (Linux only)."""
    read = _proc_kb("io", "read_bytes")
    return None if read is None else read / MB


def training_step():
    """Forward, backward and Adam step of the AVE baseline on one batch of maps."""
    torch.manual_seed(0)
    model = build_model(
        "ave",
        audio_dim=store.OFFICIAL_AUDIO_DIM,
        visual_dim=store.OFFICIAL_MAP[2],
        n_regions=store.OFFICIAL_MAP[0] * store.OFFICIAL_MAP[1],
    )
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(batch: dict) -> None:
        optimizer.zero_grad(set_to_none=True)
        scores = model(batch["audio"], batch["visual"])  # (B, T, C)
        loss = sel_loss(scores, batch["labels"])
        loss.backward()
        optimizer.step()

    return step


def run_scenario(name: str, root: Path, batches: int | None, model_step: bool) -> dict:
    """One scenario in this process; the numbers of :func:`main`'s table."""
    read_before = storage_read_mb()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="avel-bench-pooled-") as scratch:
        pooled = None
        if name == "pooled":
            pooled = Path(scratch) / "pooled"
            pool_store(root, pooled)
        dataset = AVEDataset(root, "train", pooled)
    loader = make_loader(dataset, batch_size=BATCH_SIZE, shuffle=True)
    step = training_step() if name == "maps" and model_step else None
    setup_s = time.perf_counter() - start
    videos = 0
    for batch in itertools.islice(loader, batches):
        if step is not None:
            step(batch)
        videos += len(batch["labels"])
    loop_s = time.perf_counter() - setup_s - start
    rows_read = VISUAL_SHAPE[0] if name == "pooled" else videos
    read_after = storage_read_mb()
    return {
        "peak_rss_mb": peak_rss_mb(),
        "setup_s": setup_s,
        "loop_s": loop_s,
        "wall_s": setup_s + loop_s,
        "videos": videos,
        "videos_per_s": videos / loop_s,
        "visual_mb": rows_read * ROW_BYTES / MB,
        "visual_mb_per_s": rows_read * ROW_BYTES / MB / (setup_s + loop_s),
        "storage_mb": None if read_before is None else read_after - read_before,
        "model_step": step is not None,
    }


def run_in_subprocess(name: str, root: Path, args: argparse.Namespace) -> dict:
    """Run a scenario in a fresh interpreter, so that its peak RSS is its own."""
    command = [sys.executable, "-m", "bench.memory", "--dir", str(root), "--scenario", name]
    if args.batches is not None:
        command += ["--batches", str(args.batches)]
    if args.no_model:
        command.append("--no-model")
    result = subprocess.run(command, stdout=subprocess.PIPE, text=True, cwd=REPO)
    if result.returncode != 0:
        sys.exit(f"scenario {name} failed with exit status {result.returncode} (see above)")
    return json.loads(result.stdout.splitlines()[-1])


def _cell(value, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_table(results: dict[str, dict], limit_mb: float) -> None:
    header = (
        f"{'scenario':<9}{'peak RSS MB':>12}{'setup s':>9}{'loop s':>9}{'videos':>8}"
        f"{'videos/s':>10}{'visual MB':>11}{'MB/s':>8}{'storage MB':>12}  result"
    )
    print(header)
    for name, r in results.items():
        verdict = "PASS" if r["peak_rss_mb"] < limit_mb else "FAIL"
        print(
            f"{name:<9}{r['peak_rss_mb']:>12.0f}{r['setup_s']:>9.1f}{r['loop_s']:>9.1f}"
            f"{r['videos']:>8}{r['videos_per_s']:>10.1f}{r['visual_mb']:>11.0f}"
            f"{r['visual_mb_per_s']:>8.0f}{_cell(r['storage_mb'], 0):>12}  {verdict}"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dir", type=Path, help="store directory: reused if complete, else created and kept"
    )
    parser.add_argument("--batches", type=int, help="batches per epoch (default: a full epoch)")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    parser.add_argument("--limit-mb", type=float, default=4096, help="RSS bound (default 4096)")
    parser.add_argument("--cold", action="store_true", help="evict the visual file first")
    parser.add_argument("--keep", action="store_true", help="keep the temporary store")
    parser.add_argument("--no-model", action="store_true", help="skip the AVE model step")
    parser.add_argument("--scenario", choices=SCENARIOS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scenario and args.dir is None:
        parser.error("--scenario needs --dir")
    if args.batches is not None and args.batches < 1:
        parser.error("--batches must be at least 1")
    return args


def main() -> None:
    args = parse_args()
    if args.scenario:
        print(json.dumps(run_scenario(args.scenario, args.dir, args.batches, not args.no_model)))
        return

    root = args.dir or Path(tempfile.mkdtemp(prefix="avel-bench-memory-"))
    remove = args.dir is None and not args.keep
    try:
        create_s = None
        if not all((root / name).is_file() for name in STORE_FILES):
            print(f"writing a store of the official shapes to {root} ...", flush=True)
            start = time.perf_counter()
            create_store(root)
            create_s = time.perf_counter() - start
            print(f"written in {create_s:.1f} s", flush=True)
        check_store(root)
        visual = root / store.VISUAL
        size_gb = visual.stat().st_size / 1e9
        print(f"visual file {visual}: {VISUAL_SHAPE} float64, {size_gb:.2f} GB")
        results = {}
        for name in SCENARIOS:
            if args.cold:
                evict_from_page_cache(visual)
            print(f"running {name} ...", flush=True)
            results[name] = run_in_subprocess(name, root, args)
    finally:
        if remove:
            shutil.rmtree(root)

    print_table(results, args.limit_mb)
    cache = (
        "evicted before each scenario (--cold): reads come from storage"
        if args.cold
        else "warm: reads of the pages still cached come from RAM, the rest (storage MB) from disk"
    )
    print(f"page cache: {cache}; cached pages are not process RSS, so the bound holds either way")
    passed = all(r["peak_rss_mb"] < args.limit_mb for r in results.values())
    limit = f"{args.limit_mb:.0f} MB"
    print(f"{'PASS' if passed else 'FAIL'}: peak RSS of every scenario < {limit}")
    if args.json:
        write_json(
            args.json,
            {
                "store": {"dir": str(root), "kept": not remove, "create_s": create_s},
                "visual_shape": list(VISUAL_SHAPE),
                "visual_gb": size_gb,
                "cold": args.cold,
                "limit_mb": args.limit_mb,
                "scenarios": results,
                "passed": passed,
            },
        )
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
