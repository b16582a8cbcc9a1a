"""The model files' index and code fingerprint, read from the sources without importing them.

The registry (:data:`pipeline.models.MODELS`), the params check of ``model.name``
(:mod:`pipeline.config.schema`) and the ``model_code`` stage all need to know which file
registers which model. This module finds out with :mod:`ast` and imports neither the models
nor torch, so that the ``model_code`` stages, run on every ``dvc repro``, take 0.3 s instead
of 4 s (they imported every model and PyTorch Geometric to validate the ``model`` section;
measured with ``time python -m stages.model_code`` on the idle 2-core reference machine;
``bench/first_run.py`` times every stage).
"""

import ast
import functools
import hashlib
import json
from pathlib import Path

from pipeline.config import paths
from pipeline.config.imports import local_imports
from pipeline.errors import PipelineError

PACKAGE = "pipeline.models"
DIRECTORY = Path(__file__).resolve().parents[1] / "models"
MODEL_SECTIONS = {"avel": "model", "avvp": "avvp.model"}
"""Each task's model section of ``params.yaml`` (:attr:`pipeline.models.base.Model.section`)."""
MODEL_CODE_FILES = {"avel": paths.MODEL_CODE, "avvp": paths.AVVP_MODEL_CODE}
"""Each task's fingerprint of its chosen model's code (the ``model_code`` stages)."""


def registered_in(path: Path) -> tuple[str, ...]:
    """The names a module registers: the string literals of its ``@register("...")``."""
    stat = path.stat()
    return _names_in_source(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache
def _names_in_source(path: Path, mtime_ns: int, size: int) -> tuple[str, ...]:
    """:func:`registered_in`, parsed once per version of the file."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        for decorator in getattr(node, "decorator_list", []):
            call = decorator if isinstance(decorator, ast.Call) else None
            if call is None or getattr(call.func, "id", None) != "register":
                continue
            if call.args and isinstance(call.args[0], ast.Constant):
                names.append(call.args[0].value)
    return tuple(names)


def model_index(directory: Path = DIRECTORY, package: str = PACKAGE) -> dict[str, str]:
    """``{name: module}`` of every ``@register("<name>")`` in the package's files.

    Args:
        directory: the package's directory (default: ``pipeline/models``).
        package: its dotted name (default: ``pipeline.models``).

    Raises:
        TypeError: two files register the same name.
    """
    found: dict[str, str] = {}
    for path in sorted(directory.glob("*.py")):
        for name in registered_in(path):
            module = f"{package}.{path.stem}"
            if found.get(name, module) != module:
                raise TypeError(f"model {name!r} is registered in {found[name]} and {module}")
            found[name] = module
    return found


def fingerprint_text(name: str, files: list[str], root: str | Path = ".") -> str:
    """The JSON text ``{"files": {path: sha256}, "model": name}`` of ``files`` under ``root``.

    Written by the ``model_code`` stage to ``data/model_code.json``; compared by the tables
    command with an earlier experiment's (:mod:`pipeline.experiments.reuse`).
    """
    root = Path(root)
    hashes = {path: hashlib.sha256((root / path).read_bytes()).hexdigest() for path in files}
    return json.dumps({"files": hashes, "model": name}, indent=2, sort_keys=True) + "\n"


def indexed_code_fingerprint(name: str, root: str | Path = ".", key: str = "model.name") -> str:
    """:func:`fingerprint_text` of the files model ``name`` runs, found without importing.

    The files are its module, as the index names it, and every project file that module
    imports (:func:`pipeline.config.imports.local_imports`); equal to
    :func:`pipeline.models.code_fingerprint`, which finds the module by importing it
    (tests/config/test_model_index.py checks every model).

    Args:
        name: a name registered in ``root``'s ``pipeline/models``.
        root: the repository root (default: the current directory).
        key: the params key that named the model, for the message (default ``model.name``).

    Raises:
        PipelineError: no file of ``root``'s ``pipeline/models`` registers ``name``.
    """
    root = Path(root)
    index = model_index(root / "pipeline" / "models")
    if name not in index:
        valid = ", ".join(sorted(index))
        raise PipelineError(f"{key}: unknown model {name!r}; registered: {valid}")
    module = Path(*index[name].split(".")).with_suffix(".py")
    return fingerprint_text(name, local_imports(module, root), root)
