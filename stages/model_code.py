"""model_code and avvp_model_code stages: the fingerprint of the chosen model's code.

``python -m stages.model_code`` (model_code) reads ``model.name`` and writes
``data/model_code.json``; ``python -m stages.model_code avvp`` (avvp_model_code) reads
``avvp.model.name`` and writes ``data/avvp_model_code.json``. Each holds
``{"model": name, "files": {path: sha256}}`` of the model's module and every project file
it imports (:func:`pipeline.config.model_index.indexed_code_fingerprint`, found from the
files without importing the models or torch: the stage starts in a fraction of a second).
The stages that build a model of that task depend on this file instead of on every model
file: adding a model, or editing one the chosen model does not import, leaves the file's
bytes and so their results unchanged; editing one it imports (its module, a shared layer,
the contract) changes them. The stage runs on every repro (``always_changed``, as
download: DVC cannot list the chosen model's files itself); it hashes a few dozen small
files. A name of the other task's models passes here and is refused by the stages that
build the model, before they start (:func:`pipeline.models.model_class`).
"""

import sys

from pipeline.config.model_index import MODEL_CODE_FILES, MODEL_SECTIONS, indexed_code_fingerprint
from pipeline.config.params import load_params
from pipeline.errors import run_stage
from pipeline.io import atomic_path
from stages.common import param, task_argument


def main(task: str = "avel") -> None:
    key = f"{MODEL_SECTIONS[task_argument(task, list(MODEL_SECTIONS))]}.name"
    name = param(load_params(), key)  # model.name is checked against the index here too
    with atomic_path(MODEL_CODE_FILES[task]) as tmp:
        tmp.write_text(indexed_code_fingerprint(name, key=key))
    print(f"{MODEL_CODE_FILES[task]}: the code of model {name}")


if __name__ == "__main__":
    run_stage(lambda: main(sys.argv[1] if len(sys.argv) > 1 else "avel"))
