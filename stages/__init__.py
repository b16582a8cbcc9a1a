"""Thin DVC stage entry points: ``python -m stages.<name> [task]``.

Importing the package pins the CPU's numerics (:func:`pipeline.cpu.pin`) when
``params.yaml`` sets ``train.deterministic_cpu``, before any stage imports torch.
"""

from pipeline.cpu import pin
from pipeline.errors import run_stage

run_stage(pin)
