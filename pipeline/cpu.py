"""Deterministic CPU mode (``train.deterministic_cpu``): the same bytes on any x86 CPU.

Which kernels torch runs on a CPU depends on the machine and on the environment: ATen
picks its vectorised kernels by the CPU's instruction set (AVX2, AVX-512; or whatever
``ATEN_CPU_CAPABILITY`` says), oneDNN and MKL pick theirs the same way, and the reductions
of a matrix product or a convolution are split over as many threads as there are cores
(``OMP_NUM_THREADS``). Each choice changes the order of floating-point additions, hence
the last bits of the weights after an epoch, and from there every output of training.

:func:`pin` fixes all of these, overriding whatever the caller's environment says, for the
process and its children: ATen's portable (non-vectorised) kernels, MKL's conditional
numerical reproducibility (``MKL_CBWR=COMPATIBLE``), oneDNN limited to SSE4.1, and one
intra-op thread. They are read once, when torch is first imported, so :func:`pin` runs in
``stages/__init__.py``, before any stage imports torch; in a process that has already
imported torch it changes nothing. It costs speed (``bench/deterministic_cpu.py``).
"""

import os
import sys
from pathlib import Path

import yaml

from pipeline.errors import PipelineError

PINNED = {
    "ATEN_CPU_CAPABILITY": "default",  # ATen's portable kernels, no AVX2 / AVX-512
    "MKL_CBWR": "COMPATIBLE",  # MKL's code path that gives the same bits on every x86 CPU
    "ONEDNN_MAX_CPU_ISA": "SSE41",  # oneDNN's kernels limited to SSE4.1
    "DNNL_MAX_CPU_ISA": "SSE41",  # the same, under oneDNN's older name
    "OMP_NUM_THREADS": "1",  # one intra-op thread: a fixed order of the reductions
    "MKL_NUM_THREADS": "1",
}


def wanted(params_path: str | os.PathLike = "params.yaml") -> bool:
    """``train.deterministic_cpu`` of ``params_path`` (``False`` when the file is absent).

    Raises:
        PipelineError: the key holds something other than ``true`` or ``false``.
    """
    path = Path(params_path)
    if not path.is_file():
        return False
    value = ((yaml.safe_load(path.read_text()) or {}).get("train") or {}).get("deterministic_cpu")
    if not isinstance(value, bool):
        raise PipelineError(
            f"{path}: train.deterministic_cpu: expected true or false, found {value!r}"
        )
    return value


def pin(params_path: str | os.PathLike = "params.yaml") -> bool:
    """Set :data:`PINNED` in the environment when ``train.deterministic_cpu`` asks for it
    and torch is not imported yet; whether it did."""
    if "torch" in sys.modules or not wanted(params_path):
        return False
    os.environ.update(PINNED)
    return True
