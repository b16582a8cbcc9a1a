"""Deterministic CPU mode (``train.deterministic_cpu``) and the machine a run was made on.

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
imported torch it changes nothing.

What it gives, as tested: a training stage writes the same bytes whatever the caller's
``OMP_NUM_THREADS``, ``ATEN_CPU_CAPABILITY``, ``MKL_CBWR`` or ``ONEDNN_MAX_CPU_ISA`` say, on
one machine (``tests/test_cpu.py``). What it does not: the same bytes on another CPU. A
pinned ``train_sel`` on a second machine (same wheel, code, data and params) differed from
the first in the 8th digit of the first epoch's loss (issue 29). It costs about 2x per
epoch (``bench/deterministic_cpu.py``), so it is off in the default quick profile and on in
the tables' profile (``presets/tables-synthetic.yaml``), which rendered the committed tables
with it. Off, a rerun on the same machine with the same thread count writes the same bytes
(``tests/test_cpu.py``). Every training stage records :func:`machine` in its metrics, so a
``dvc.lock`` run says which CPU, thread count and kernels made it.
"""

import os
import platform
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


# Entry points that extract features from raw video (VGG-19, VGGish): nothing downstream needs
# their last bits fixed, and the portable kernels slowed 9 videos from minutes to 18+ (issue 29).
UNPINNED = ("stages.download", "stages.predict")


def _entry_point() -> str | None:
    """The module of ``python -m MODULE`` that started this process, else ``None``."""
    argv = getattr(sys, "orig_argv", [])
    return next((argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "-m"), None)


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


def cpu_model() -> str:
    """The CPU's model string (``/proc/cpuinfo``'s ``model name``, else the platform's)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def machine() -> dict[str, str | int]:
    """What decides a CPU run's bytes: the CPU model, torch's intra-op threads and whether
    the kernels were pinned (:data:`PINNED` in force), for a stage's metrics."""
    import torch

    pinned = all(os.environ.get(key) == value for key, value in PINNED.items())
    return {
        "cpu": cpu_model(),
        "cpu_threads": torch.get_num_threads(),
        "cpu_kernels": "pinned" if pinned else "native",
    }


def pin(params_path: str | os.PathLike = "params.yaml") -> bool:
    """Set :data:`PINNED` in the environment when ``train.deterministic_cpu`` asks for it
    and torch is not imported yet and the process is not a feature-extracting entry point
    (:data:`UNPINNED`); whether it did."""
    if "torch" in sys.modules or _entry_point() in UNPINNED or not wanted(params_path):
        return False
    os.environ.update(PINNED)
    return True
