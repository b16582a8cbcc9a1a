"""The papers' ablation tables (``ablations.yaml``) and the DVC experiments that fill them.

``ablations.yaml`` describes each table of the seeds: its rows as ``-S`` overrides of
``params.yaml`` plus the stage targets, which evaluation feeds each row, and the paper's
numbers. :func:`load_ablations` validates it against the schema of this module, against
``dvc.yaml`` (every override is a key that some stage declares, every target a stage) and
against the params schema and the model registry (every overridden value is valid, the
row's model is registered and accepts it, and reads every ``model.<key>`` overridden),
before anything is queued.

:func:`plan` turns the rows of some tables into experiments: one per distinct set of
overrides and seed (``train.seed``), with the union of the targets its rows need, so that
rows sharing a run (e.g. seed 004's AVE and AVE-repeat) share one experiment. An
experiment's name is a hash of what defines it; experiments of the current ``HEAD`` are
found by name and reused (:func:`existing_experiments`), since the ``HEAD`` commit fixes the
code and ``params.yaml``.
"""

import copy
import hashlib
import itertools
import json
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from pipeline.config.schema import did_you_mean, validate_params
from pipeline.errors import PipelineError
from pipeline.models import declarations

Metric = Literal[
    "accuracy",
    "weighted_f1",
    "non_ave_f1",
    "non_ave_recall",
    "non_ave_precision",
    "ave_f1",
    "ave_recall",
    "ave_precision",
    # AVVP (pipeline.avvp.metrics.METRICS; tests/avvp/test_tables.py keeps the two equal)
    "audio_segment",
    "audio_event",
    "visual_segment",
    "visual_event",
    "av_segment",
    "av_event",
    "type_segment",
    "type_event",
    "event_segment",
    "event_event",
]
Result = Literal["sel", "wsel", "wsel_refined", "avvp_han", "avvp_han_lr"]
NAME = r"^[a-z0-9][a-z0-9_+.-]*$"
SEED_KEY = "train.seed"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Printed(float):
    """A YAML float that remembers how it was written (``77.50``, not ``77.5``)."""

    text: str

    def __new__(cls, text: str) -> "Printed":
        value = super().__new__(cls, text)
        value.text = text
        return value


class _PrintedLoader(yaml.SafeLoader):
    """YAML's safe loader, with floats as :class:`Printed`."""


_PrintedLoader.add_constructor(
    "tag:yaml.org,2002:float",
    lambda loader, node: Printed(loader.construct_scalar(node)),
)


def _as_printed(value: Any) -> Any:
    """A paper number as the paper prints it: its YAML text, as a :class:`Decimal`."""
    if isinstance(value, Printed):
        return Decimal(value.text)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Decimal(str(value))
    return value


PaperNumber = Annotated[Decimal, BeforeValidator(_as_printed)]


class Paper(_Strict):
    """The paper's numbers of a row, in percent, with their printed decimals (``77.50``):
    original labels and, where given, C-AVE.

    An AVVP table (results ``avvp_*``) has one label set, LLP's, under ``o_ave``.
    """

    o_ave: dict[Metric, PaperNumber | None] = Field(default_factory=dict)
    c_ave: dict[Metric, PaperNumber | None] | None = None


class Row(_Strict):
    """One row: either how to run it (overrides, targets, result, output) or why not."""

    name: str = Field(pattern=NAME)
    label: str
    overrides: dict[str, Any] | None = None
    targets: list[str] | None = None
    result: Result | None = None
    output: str | None = Field(None, pattern=r"^(model\w*|gt_repeat)$")
    paper: Paper = Field(default_factory=Paper)
    not_run: str | None = None

    @model_validator(mode="after")
    def _runnable_or_not(self) -> "Row":
        run = (self.overrides, self.targets, self.result, self.output)
        if self.not_run is None and any(value is None for value in run):
            raise ValueError("a row needs overrides, targets, result and output, or not_run")
        if self.not_run is not None and any(value is not None for value in run):
            raise ValueError("a not_run row has no overrides, targets, result or output")
        if self.overrides and SEED_KEY in self.overrides:
            raise ValueError(f"{SEED_KEY} is set per seed by the tables command, not by a row")
        return self

    @property
    def runnable(self) -> bool:
        return self.not_run is None


class Table(_Strict):
    """One table or figure of a seed."""

    id: str = Field(pattern=NAME)
    caption: str
    seed: str
    ref: str
    metrics: list[Metric] = Field(min_length=1)
    reference: str
    note: str = ""
    rows: list[Row] = Field(min_length=1)
    _unrunnable: list[str] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _rows_named_once_and_reference_runnable(self) -> "Table":
        names = [row.name for row in self.rows]
        if len(set(names)) != len(names):
            raise ValueError(f"row names must be unique, found {sorted(names)}")
        runnable = {row.name for row in self.rows if row.runnable}
        if self.reference not in runnable:
            raise ValueError(f"reference {self.reference!r} is not a runnable row of the table")
        return self

    def row(self, name: str) -> Row:
        return next(row for row in self.rows if row.name == name)

    def check_runnable(self) -> None:
        """Raise the problems of rows that cannot run on the current ``params.yaml``: rows
        that name no model but set keys its ``model.name`` does not read (found when the
        file is loaded, raised only when the table is run or rendered, so that another
        model in ``params.yaml`` does not break the unrelated tables)."""
        if self._unrunnable:
            raise PipelineError("\n".join(self._unrunnable))


class Ablations(_Strict):
    """The whole file: the tables, and the ``profile`` every runnable row starts from.

    ``profile`` is a preset file (``presets/<name>.yaml``, what differs from ``params.yaml``):
    its keys become overrides of every runnable row, under the row's own, so the tables run
    the same settings whatever the default ``params.yaml`` says (the default is a quick
    profile for a first result; the tables keep their own).
    """

    profile: str | None = None
    tables: list[Table] = Field(min_length=1)

    @model_validator(mode="after")
    def _ids_once(self) -> "Ablations":
        ids = [table.id for table in self.tables]
        if len(set(ids)) != len(ids):
            raise ValueError(f"table ids must be unique, found {ids}")
        return self

    def table(self, table_id: str) -> Table:
        """The table ``table_id``, checked runnable (:meth:`Table.check_runnable`)."""
        for table in self.tables:
            if table.id == table_id:
                table.check_runnable()
                return table
        valid = [t.id for t in self.tables]
        hint = did_you_mean(table_id, valid)
        raise PipelineError(
            f"unknown table {table_id!r}{hint}; valid ids: {', '.join(valid)} (or all)"
        )

    def select(self, ids: list[str]) -> list[Table]:
        """The tables ``ids`` (``["all"]``: every table), each checked runnable."""
        if ids == ["all"]:
            for table in self.tables:
                table.check_runnable()
            return list(self.tables)
        return [self.table(table_id) for table_id in ids]


def _format_error(path: Path, data: Any, error: dict) -> str:
    """``file: tables[i] (id) rows[j] (name): message`` for one pydantic error."""
    parts, node = [], data
    for part in error["loc"]:
        if isinstance(part, int) and isinstance(node, list) and part < len(node):
            node = node[part]
            ident = node.get("id") or node.get("name") if isinstance(node, dict) else None
            parts[-1] += f"[{part}]" + (f" ({ident})" if ident else "")
        else:
            parts.append(str(part))
            node = node.get(part) if isinstance(node, dict) else None
    message = error["msg"].removeprefix("Value error, ")
    return f"{path}: {'.'.join(parts)}: {message}"


def declared_params(dvc_yaml: dict) -> set[str]:
    """Every params entry that some stage of ``dvc.yaml`` declares (sections or keys)."""
    declared = set()
    for stage in dvc_yaml["stages"].values():
        for entry in stage.get("do", stage).get("params", []) or []:
            declared |= set(entry) if isinstance(entry, dict) else {entry}
    return declared


def stage_targets(dvc_yaml: dict) -> set[str]:
    """Every stage name of ``dvc.yaml``, ``foreach`` stages expanded as ``name@item``."""
    names = set()
    for name, stage in dvc_yaml["stages"].items():
        items = stage.get("foreach")
        names |= {f"{name}@{item}" for item in items} if items else {name}
    return names


def _is_read(key: str, declared: set[str]) -> bool:
    parts = key.split(".")
    return any(".".join(parts[:i]) in declared for i in range(1, len(parts) + 1))


def apply_overrides(params: dict, overrides: dict[str, Any]) -> dict:
    """A copy of ``params`` with each dotted key of ``overrides`` set."""
    params = copy.deepcopy(params)
    for key, value in overrides.items():
        *parents, last = key.split(".")
        node = params
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return params


def dotted(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` as ``{"a.b": 1}``: nested mappings flattened to dotted keys."""
    out = {}
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            out.update(dotted(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _apply_profile(path: Path, ablations: Ablations) -> None:
    """Put the keys of ``ablations.profile`` under every runnable row's overrides."""
    if ablations.profile is None:
        return
    preset = path.parent / ablations.profile
    try:
        profile = yaml.safe_load(preset.read_text()) if preset.is_file() else None
    except yaml.YAMLError as err:
        raise PipelineError(f"{preset} (profile of {path}): not valid YAML ({err})") from None
    if not isinstance(profile, dict):
        found = "no such file" if not preset.is_file() else type(profile).__name__
        raise PipelineError(
            f"{path}: profile {ablations.profile!r}: expected a preset file of params "
            f"sections, found {found}"
        )
    keys = dotted(profile)
    for table in ablations.tables:
        for row in table.rows:
            if row.runnable:
                row.overrides = {**keys, **row.overrides}


def _check_rows(
    path: Path, ablations: Ablations, dvc_yaml: dict, params: dict, params_file: Path
) -> None:
    declared, targets = declared_params(dvc_yaml), stage_targets(dvc_yaml)
    for table in ablations.tables:
        for row in table.rows:
            if not row.runnable:
                continue
            where = f"{path}: table {table.id} row {row.name}"
            for key in row.overrides:
                if not _is_read(key, declared):
                    raise PipelineError(f"{where}: override {key!r}: no stage reads this key")
            unknown = sorted(set(row.targets) - targets)
            if unknown:
                valid = ", ".join(sorted(targets))
                raise PipelineError(f"{where}: unknown target(s) {unknown}; stages: {valid}")
            sections = tuple(dict.fromkeys(key.split(".")[0] for key in row.overrides))
            try:
                checked = validate_params(
                    apply_overrides(params, row.overrides), sections, source=_ROW
                )
            except PipelineError as err:
                raise PipelineError(_row_error(where, str(err), row, params_file)) from None
            problem = _unread_model_key(row.overrides, checked)
            if problem and any(
                problem.startswith(p) and f"{p}name" in row.overrides for p in PREFIXES
            ):
                raise PipelineError(f"{where}: {problem}")
            if problem:  # the row runs params.yaml's model: its table only is unrunnable
                table._unrunnable.append(
                    f"{where}: {problem} (the row names no model.name: it runs "
                    f"{params_file}'s; set model.name there, or in the row's overrides)"
                )


PREFIXES = ("model.", "avvp.model.")  # the model sections' keys (AVEL, AVVP) in overrides
_ROW = "\0"  # the source validate_params names, replaced per line by _row_error


def _row_error(where: str, message: str, row: Row, params_file: Path) -> str:
    """Each line of a row's params error, naming where the bad value is: the row's
    override (in ``ablations.yaml``) or ``params.yaml``."""
    lines = []
    for line in message.splitlines():
        text = line.removeprefix(f"{_ROW}: ")
        key = text.split(":", 1)[0]
        overridden = key in row.overrides or any(k.startswith(f"{key}.") for k in row.overrides)
        lines.append(f"{where}: {'override ' if overridden else f'{params_file}: '}{text}")
    return "\n".join(lines)


def _unread_model_key(overrides: dict[str, Any], checked: dict) -> str | None:
    """Every overridden ``model.<key>`` (``avvp.model.<key>``) must be read by the row's
    AVEL (AVVP) model (else: same run)."""
    for prefix in PREFIXES:
        keys = [key.removeprefix(prefix) for key in overrides if key.startswith(prefix)]
        keys = [key for key in keys if key != "name"]
        if not keys:
            continue
        section = checked["avvp"]["model"] if prefix == "avvp.model." else checked["model"]
        name = section["name"]
        reads = set(declarations([name])[name])
        unread = [key for key in keys if key not in reads]
        if unread:
            return (
                f"{prefix}{unread[0]}: not read by model {name!r}, which reads "
                f"{', '.join(sorted(reads))}"
            )
    return None


def load_ablations(
    path: str | Path = "ablations.yaml",
    dvc_yaml: str | Path = "dvc.yaml",
    params: str | Path = "params.yaml",
) -> Ablations:
    """Read and validate the table definitions.

    Raises:
        PipelineError: a missing or malformed file, an unknown key, a row without a name, an
            override of a key no stage reads, an unknown target, or an invalid value, with
            the table and row named.
    """
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: table definitions not found")
    try:
        data = yaml.load(path.read_text(), Loader=_PrintedLoader)  # noqa: S506 (safe loader)
    except yaml.YAMLError as err:
        raise PipelineError(f"{path}: not valid YAML ({err})") from None
    try:
        ablations = Ablations.model_validate(data)
    except ValidationError as err:
        lines = [_format_error(path, data, e) for e in err.errors()]
        raise PipelineError("\n".join(lines)) from None
    _apply_profile(path, ablations)
    stages = yaml.safe_load(Path(dvc_yaml).read_text())
    _check_rows(path, ablations, stages, yaml.safe_load(Path(params).read_text()), Path(params))
    return ablations


# ---------------------------------------------------------------------------------------
# Experiments


@dataclass(frozen=True)
class Experiment:
    """One DVC experiment: the overrides, the seed and the stage targets it runs."""

    overrides: tuple[tuple[str, str], ...]  # (key, value as passed to -S), sorted
    seed: int
    targets: tuple[str, ...]

    @property
    def name(self) -> str:
        """``abl-`` and a hash of the definition: the same experiment gets the same name."""
        text = json.dumps([self.overrides, self.seed, self.targets])
        return "abl-" + hashlib.sha1(text.encode()).hexdigest()[:12]

    def command(self, queue: bool = True) -> list[str]:
        """The ``dvc exp run`` arguments that queue it (or, with ``queue=False``, run it here).

        Each setting is ``-S ++key=value``, Hydra's add-or-override: the default
        ``params.yaml`` leaves out the keys of the models it does not run (PSP's
        ``psp_network``, CMRAN's ``av_heads``: the schema's defaults apply), and a plain
        ``-S key=value`` refuses a key that is not in the file."""
        settings = [f"++{key}={value}" for key, value in self.overrides]
        settings.append(f"++{SEED_KEY}={self.seed}")
        sets = [arg for setting in settings for arg in ("-S", setting)]
        where = ["--queue"] if queue else []
        return ["exp", "run", *where, "-n", self.name, *sets, *self.targets]


def override_text(value: Any) -> str:
    """A value as ``dvc exp run -S`` parses it back (YAML flow style, no spaces)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ",".join(override_text(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, str) and not re.fullmatch(r"[A-Za-z_][\w.-]*", value):
        raise PipelineError(f"override value {value!r}: only plain words are supported")
    return str(value)


@dataclass(frozen=True)
class Cell:
    """Where a row's numbers for one seed come from: ``experiment``, or any of
    ``alternatives`` (the same overrides and seed, other targets that include the row's)
    that exists."""

    experiment: Experiment
    result: str
    output: str
    alternatives: tuple[Experiment, ...] = ()

    def candidates(self) -> tuple[Experiment, ...]:
        return (self.experiment, *self.alternatives)


def is_served(
    experiment: Experiment,
    alternatives: dict[str, tuple[Experiment, ...]],
    found: Collection[str],
) -> bool:
    """Whether ``experiment`` or one of the experiments that serve all its cells as well
    (``alternatives``: name -> experiments) is among the experiment names ``found``."""
    served = (experiment, *alternatives.get(experiment.name, ()))
    return any(e.name in found for e in served)


def _overrides_key(row: Row) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, override_text(v)) for k, v in row.overrides.items()))


def _target_groups(tables: Iterable[Table]) -> dict[tuple, set[tuple[str, ...]]]:
    """Overrides -> the target lists of the runnable rows with those overrides."""
    groups: dict[tuple, set[tuple[str, ...]]] = {}
    for table in tables:
        for row in filter(lambda r: r.runnable, table.rows):
            groups.setdefault(_overrides_key(row), set()).add(tuple(sorted(row.targets)))
    return groups


def _unions(target_lists: set[tuple[str, ...]]) -> set[tuple[str, ...]]:
    """Every union of one or more of ``target_lists``, each sorted."""
    lists = sorted(target_lists)
    return {
        tuple(sorted(set().union(*chosen)))
        for size in range(1, len(lists) + 1)
        for chosen in itertools.combinations(lists, size)
    }


def plan(
    tables: Iterable[Table], seeds: Iterable[int], every_table: Iterable[Table] | None = None
) -> dict[tuple[str, str, int], Cell]:
    """The experiments of ``tables`` over ``seeds``, shared between rows where possible.

    Rows of ``tables`` with the same overrides share one experiment that runs all their
    targets, so the experiment's name depends on which tables are run together. So that a
    table still finds its results when it was run beside others (``run tlr-t3 tlr-t5``, then
    ``render tlr-t5``) or alone, each cell also lists as ``alternatives`` the other
    experiments that a selection out of ``every_table`` (default: ``tables``) would have made
    for its overrides and seed and that run the row's own targets.

    Returns:
        ``(table id, row name, seed)`` -> its :class:`Cell`, for every runnable row.
    """
    tables, seeds = list(tables), list(seeds)
    groups = _target_groups(tables)
    wider = {key: _unions(lists) for key, lists in _target_groups(every_table or tables).items()}
    cells = {}
    for table in tables:
        for row in filter(lambda r: r.runnable, table.rows):
            key = _overrides_key(row)
            targets = tuple(sorted(set().union(*groups[key])))
            own = set(row.targets)
            others = sorted(t for t in wider.get(key, ()) if set(t) >= own and t != targets)
            for seed in seeds:
                experiment = Experiment(key, seed, targets)
                alternatives = tuple(Experiment(key, seed, t) for t in others)
                cells[(table.id, row.name, seed)] = Cell(
                    experiment, row.result, row.output, alternatives
                )
    return cells
