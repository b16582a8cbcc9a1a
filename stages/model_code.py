"""model_code stage: the fingerprint of the chosen model's code, ``data/model_code.json``.

Reads ``model.name``; writes ``{"model": name, "files": {path: sha256}}`` of the model's
module and every project file it imports
(:func:`pipeline.config.model_index.indexed_code_fingerprint`, found from the files without
importing the models or torch: the stage starts in a fraction of a second). The stages that
build a model depend on this file instead of on every model file: adding a
model, or editing one that the chosen model does not import, leaves the file's bytes and
so their results unchanged; editing one it imports (its module, a shared layer, the
contract) changes them. The stage runs on every repro (``always_changed``, as download:
DVC cannot list the chosen model's files itself); it hashes a few dozen small files.
"""

from pipeline.config import paths
from pipeline.config.model_index import indexed_code_fingerprint
from pipeline.config.params import load_params
from pipeline.errors import run_stage
from pipeline.io import atomic_path


def main() -> None:
    name = load_params()["model"]["name"]  # checked against the index, as by every stage
    with atomic_path(paths.MODEL_CODE) as tmp:
        tmp.write_text(indexed_code_fingerprint(name))
    print(f"{paths.MODEL_CODE}: the code of model {name}")


if __name__ == "__main__":
    run_stage(main)
