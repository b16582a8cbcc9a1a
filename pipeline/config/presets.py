"""Presets: the papers' settings, each a file of what differs from ``params.yaml``.

``presets/<name>.yaml`` holds only the keys whose values differ from the defaults (a
test keeps it so). ``python -m pipeline.config.presets presets/<name>.yaml`` applies one: it
merges the preset into ``params.yaml`` (mappings key by key, any other value replaced),
checks the result against the whole schema, and rewrites ``params.yaml`` in place with its
comments kept, atomically. It prints every value it changed (old -> new) and warns about a
placeholder it wrote (a ``/path/to/...`` directory that must be set before ``dvc repro``).
``dvc repro`` then runs the papers' settings.
"""

import copy
import io
import re
import sys
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedSeq

from pipeline.config.schema import SECTIONS, validate_params
from pipeline.errors import PipelineError, run_stage
from pipeline.io import atomic_path


def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` merged in: mappings key by key, other values replaced."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def differences(params: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """The part of ``params`` that differs from ``base`` (so ``merged(base, it) ⊇ params``)."""
    out = {}
    for key, value in params.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            inner = differences(value, base[key])
            if inner:
                out[key] = inner
        elif key not in base or base[key] != value:
            out[key] = value
    return out


PLACEHOLDER = re.compile(r"^/path/to(/|$)|^<[^>]*>$")  # a value the user must replace


def changes(before: dict[str, Any], after: dict[str, Any], prefix: str = "") -> list[tuple]:
    """``(dotted key, old, new)`` for every leaf value that differs (``old`` ``None`` when
    the key was absent)."""
    out = []
    for key, new in after.items():
        old = before.get(key) if isinstance(before, dict) else None
        name = f"{prefix}{key}"
        if isinstance(new, dict) and isinstance(old, dict):
            out += changes(old, new, f"{name}.")
        elif old != new:
            out.append((name, old, new))
    return out


def placeholders(params: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """``(dotted key, value)`` of every placeholder string in ``params``."""
    out = []
    for key, value in params.items():
        if isinstance(value, dict):
            out += placeholders(value, f"{prefix}{key}.")
        elif isinstance(value, str) and PLACEHOLDER.search(value):
            out.append((f"{prefix}{key}", value))
    return out


def _text(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=4096).strip().removesuffix("\n...")


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise PipelineError(f"{path}: file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise PipelineError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(data, dict):
        raise PipelineError(f"{path}: expected a mapping of sections, found {type(data).__name__}")
    return data


def preset_params(preset: str | Path, params: str | Path = "params.yaml") -> dict[str, Any]:
    """The checked parameters of ``params`` with ``preset`` applied.

    Raises:
        PipelineError: a missing or malformed file, or a merged value the schema rejects
            (named by key, with the preset's name).
    """
    result = merged(_read(Path(params)), _read(Path(preset)))
    return validate_params(result, tuple(SECTIONS), source=f"{params} with {preset}")


def _update(node: Any, changes: dict[str, Any]) -> None:
    """Merge ``changes`` into a round-trip (comment-keeping) mapping, in place."""
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(node.get(key), dict):
            _update(node[key], value)
        elif isinstance(value, list):  # one line, as params.yaml writes its lists
            node[key] = CommentedSeq(value)
            node[key].fa.set_flow_style()
        else:
            node[key] = value


def apply_preset(preset: str | Path, params: str | Path = "params.yaml") -> None:
    """Apply ``preset`` to the file ``params`` in place, comments kept (checked first)."""
    preset_params(preset, params)
    loader = YAML()
    loader.preserve_quotes = True
    loader.width = 4096
    loader.representer.add_representer(  # null stays null, not an empty value
        type(None), lambda dumper, _: dumper.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    document = loader.load(Path(params).read_text())
    _update(document, _read(Path(preset)))
    text = io.StringIO()
    loader.dump(document, text)
    with atomic_path(params) as tmp:
        Path(tmp).write_text(text.getvalue())


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise PipelineError("usage: python -m pipeline.config.presets presets/<name>.yaml")
    before = _read(Path("params.yaml"))
    apply_preset(argv[1])
    after = _read(Path("params.yaml"))
    changed = changes(before, after)
    print(f"params.yaml: {argv[1]} applied, {len(changed)} value(s) changed:")
    for key, old, new in changed:
        print(f"  {key}: {_text(old)} -> {_text(new)}")
    for key, value in placeholders(after):
        print(
            f"warning: params.yaml: {key} is a placeholder ({value}): set it before dvc repro"
            + (" (or data.source: ave to download AVE)" if key == "data.local_dir" else "")
        )


if __name__ == "__main__":
    run_stage(lambda: main(sys.argv))
