"""Device choice: auto claims a GPU of its own (most free memory first), or the CPU."""

import multiprocessing

import pytest
import torch

from pipeline import device
from pipeline.device import claim_gpu, resolve_device
from pipeline.errors import PipelineError


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(PipelineError, match="unknown device 'tpu'"):
        resolve_device("tpu")


def _fake_gpus(monkeypatch, tmp_path, free: dict[int, int]) -> None:
    """``free[i]`` bytes free on each of ``len(free)`` faked GPUs; locks under ``tmp_path``."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(free))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda i: (free[i], 80 * 2**30))
    monkeypatch.setattr(device, "gpu_ids", lambda: [f"GPU-{i}" for i in range(len(free))])
    monkeypatch.setenv("AVEL_GPU_LOCKS", str(tmp_path / "locks"))


def test_auto_device_picks_the_gpu_with_the_most_free_memory(monkeypatch, tmp_path):
    free = {0: 3 * 2**30, 1: 70 * 2**30, 2: 70 * 2**30, 3: 10 * 2**30}  # bytes free per GPU
    _fake_gpus(monkeypatch, tmp_path, free)
    assert resolve_device("auto") == torch.device("cuda", 1)  # ties: the lowest index
    free[1] = 0
    assert resolve_device("auto") == torch.device("cuda", 2)  # a new claim drops the old
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")


def _start_and_hold(barrier, found, release) -> None:
    """A stage process: start with the others, resolve ``auto``, hold its GPU until told."""
    barrier.wait()
    found.put(resolve_device("auto").index)
    release.wait()


def _started_together(n: int, release) -> tuple[list, list[int]]:
    context = multiprocessing.get_context("fork")  # keeps the faked torch.cuda
    barrier, found = context.Barrier(n), context.Queue()
    processes = [
        context.Process(target=_start_and_hold, args=(barrier, found, release)) for _ in range(n)
    ]
    for process in processes:
        process.start()
    return processes, sorted(found.get(timeout=60) for _ in range(n))


def test_experiments_started_together_get_one_gpu_each(monkeypatch, tmp_path):
    n = 4
    _fake_gpus(monkeypatch, tmp_path, dict.fromkeys(range(n), 40 * 2**30))  # all look alike
    release = multiprocessing.get_context("fork").Event()
    processes, devices = _started_together(n, release)
    assert devices == list(range(n))  # N experiments on N GPUs: N different GPUs
    # a fifth while the four hold theirs shares the one with the most free memory
    assert claim_gpu([1, 5, 3, 2], [f"GPU-{i}" for i in range(n)], tmp_path / "locks") == 1
    release.set()
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    # the kernel released the locks with the processes: four new ones spread again
    release.clear()
    processes, devices = _started_together(n, release)
    assert devices == list(range(n))
    release.set()
    for process in processes:
        process.join(timeout=60)


def test_a_second_claim_of_a_process_drops_its_first(tmp_path):
    ids = ["GPU-a", "GPU-b"]
    assert claim_gpu([10, 20], ids, tmp_path) == 1  # the most free memory
    assert claim_gpu([10, 20], ids, tmp_path) == 1  # its own claim, dropped and taken again
