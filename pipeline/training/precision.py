"""Mixed precision (``train.precision``): one autocast path for training and inference.

``fp32`` runs as is; ``bf16`` and ``fp16`` run forward passes and losses under
:func:`torch.autocast` (matrix products and convolutions in the low precision, reductions,
softmaxes and losses in float32), on the GPU and on the CPU alike; ``fp16`` training adds a
gradient scaler against underflowing gradients. Training, validation, evaluation and the
pseudo-labels of ``refine`` all go through :func:`autocast`.
"""

import contextlib

import torch

PRECISIONS = ("fp32", "bf16", "fp16")
_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The autocast context of ``train.precision`` on ``device``.

    ``fp32`` runs as is; ``bf16`` and ``fp16`` run the forward pass and the loss under
    :func:`torch.autocast` (matrix products and convolutions in the low precision, reductions
    and losses in float32), on the GPU and on the CPU alike.

    Args:
        device: where the model lives.
        precision: ``fp32``, ``bf16`` or ``fp16``.
    """
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=_AUTOCAST[precision])


def make_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """The gradient scaler of ``fp16`` training; a pass-through for the other precisions."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")
