"""model_code and avvp_model_code stages: the fingerprint of the chosen model's code.

``python -m stages.model_code`` (model_code) reads ``model.name`` and writes
``data/model_code.json``; ``python -m stages.model_code avvp`` (avvp_model_code) reads
``avvp.model.name`` and writes ``data/avvp_model_code.json``. Each holds
``{"model": name, "files": {path: sha256}}`` of the model's module and every project file
it imports (:func:`pipeline.models.code_fingerprint`). The stages that build a model of
that task depend on this file instead of on every model file: adding a model, or editing
one the chosen model does not import, leaves the file's bytes and so their results
unchanged; editing one it imports (its module, a shared layer, the contract) changes them.
The stage runs on every repro (``always_changed``, as download: DVC cannot list the chosen
model's files itself); it hashes a few dozen small files.
"""

import sys

from pipeline.config.params import load_params
from pipeline.errors import run_stage
from pipeline.io import atomic_path
from pipeline.models import code_fingerprint, model_class
from pipeline.tasks import TASKS
from stages.common import param, task_argument


def main(task: str = "avel") -> None:
    described = TASKS[task_argument(task, list(TASKS))]
    section = described.model_section
    name = param(load_params((section.split(".")[0],)), f"{section}.name")
    model_class(name, described.name)
    with atomic_path(described.model_code) as tmp:
        tmp.write_text(code_fingerprint(name))
    print(f"{described.model_code}: the code of model {name}")


if __name__ == "__main__":
    run_stage(lambda: main(sys.argv[1] if len(sys.argv) > 1 else "avel"))
