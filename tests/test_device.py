"""Device choice: auto picks the least used GPU, or the CPU."""

import pytest
import torch

from pipeline.device import resolve_device
from pipeline.errors import PipelineError


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(PipelineError, match="unknown device 'tpu'"):
        resolve_device("tpu")


def test_auto_device_picks_the_gpu_with_the_most_free_memory(monkeypatch):
    free = {0: 3 * 2**30, 1: 70 * 2**30, 2: 70 * 2**30, 3: 10 * 2**30}  # bytes free per GPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(free))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda i: (free[i], 80 * 2**30))
    assert resolve_device("auto") == torch.device("cuda", 1)  # ties: the lowest index
    free[1] = 0
    assert resolve_device("auto") == torch.device("cuda", 2)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
