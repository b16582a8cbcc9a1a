"""The project files a stage imports, to keep ``dvc.yaml``'s per-file code deps exact.

:func:`local_imports` follows the imports that run when a module is imported. An import
inside a function is not counted: it is a deliberate lazy import. The model registry is
the one that matters: :data:`pipeline.models.MODELS` imports a model's module when its
name is looked up, so no stage imports a model file at its top level and no model file is
a code dep; the stages that build a model depend instead on the ``model_code`` stage's
fingerprint of the chosen model's files (:func:`pipeline.models.code_fingerprint`,
docs/design.md §4; tests/config/test_dvc_yaml.py checks both).

``python -m pipeline.config.imports --write`` writes each stage's code deps into ``dvc.yaml``;
without ``--write`` it exits 1 when they drifted (tests/config/test_dvc_yaml.py runs the check).
"""

import ast
import re
import sys
from pathlib import Path


def _module_file(root: Path, module: str) -> Path | None:
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _module_level(tree: ast.Module) -> list[ast.AST]:
    """The nodes of a module outside function bodies (what importing it runs)."""
    nodes, todo = [], list(tree.body)
    while todo:
        node = todo.pop()
        nodes.append(node)
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            todo.extend(ast.iter_child_nodes(node))
    return nodes


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in _module_level(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def local_imports(script: str | Path, root: str | Path = ".") -> list[str]:
    """Every project file ``script`` imports, directly or not, itself included.

    Package ``__init__.py`` files on the way are included (importing ``a.b`` runs
    ``a/__init__.py``), the script's own packages too (``python -m stages.train`` runs
    ``stages/__init__.py`` first). Imports inside functions are not followed. Paths are
    relative to ``root`` and sorted.

    Args:
        script: the stage script.
        root: the repository root (default: the current directory).
    """
    root = Path(root)
    seen: set[Path] = set()
    todo = [root / script]
    for package in Path(script).parents:
        if package != Path(".") and (root / package / "__init__.py").is_file():
            todo.append(root / package / "__init__.py")
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in _imported_modules(path):
            parts = module.split(".")
            for depth in range(1, len(parts) + 1):
                found = _module_file(root, ".".join(parts[:depth]))
                if found is not None and found not in seen:
                    todo.append(found)
    return sorted(str(p.relative_to(root)) for p in seen)


# ---------------------------------------------------------------------------------------
# dvc.yaml's per-file code deps, generated: ``python -m pipeline.config.imports --write``.

_STAGE = re.compile(r"^  ([\w-]+):\s*$")
_CMD = re.compile(r"^\s+cmd: python -m ([\w.]+)")
_CODE_DEP = re.compile(r"^(\s+)- (\S+\.py)\s*$")


def with_code_deps(text: str, root: str | Path = ".") -> str:
    """``dvc.yaml``'s text with each stage's ``.py`` deps replaced by its imports.

    Each stage's ``cmd: python -m <module>`` names its script; the ``.py`` entries of its
    ``deps`` become :func:`local_imports` of that script, at the place of the first one.
    Every other line (data deps, comments) is kept.

    Args:
        text: the text of ``dvc.yaml``.
        root: the repository root (default: the current directory).
    """
    lines, out, script, written = text.splitlines(keepends=True), [], None, False
    for line in lines:
        if _STAGE.match(line):
            script, written = None, False
        command = _CMD.match(line)
        if command:
            script = command.group(1).replace(".", "/") + ".py"
        dep = _CODE_DEP.match(line)
        if dep is None or script is None:
            out.append(line)
            continue
        if not written:
            indent = dep.group(1)
            out += [f"{indent}- {path}\n" for path in local_imports(script, root)]
            written = True
    return "".join(out)


def main(argv: list[str]) -> int:
    """``--write``: rewrite ``dvc.yaml``'s code deps; otherwise exit 1 if they drifted."""
    path = Path("dvc.yaml")
    text = path.read_text()
    new = with_code_deps(text)
    if argv[1:] == ["--write"]:
        path.write_text(new)
        return 0
    if new != text:
        print(
            "dvc.yaml: code deps differ from the imports; run "
            "python -m pipeline.config.imports --write"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
