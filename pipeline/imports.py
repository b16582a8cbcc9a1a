"""The project files a stage imports, to keep ``dvc.yaml``'s per-file code deps exact."""

import ast
from pathlib import Path


def _module_file(root: Path, module: str) -> Path | None:
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
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
    ``stages/__init__.py`` first). Paths are relative to ``root`` and sorted.

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
