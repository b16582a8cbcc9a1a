"""The tables' profile (``ablations.yaml`` ``profile:``): every runnable row starts from the
preset's keys, under its own overrides, whatever the quick default ``params.yaml`` says."""

from pathlib import Path

import pytest
import yaml

from pipeline.errors import PipelineError
from pipeline.experiments.ablations import dotted, load_ablations, plan
from tests.experiments.test_tables import TINY_TABLE

ROOT = Path(__file__).resolve().parents[2]


def _project(tmp_path: Path, profile: dict | None, name: str = "profile.yaml") -> Path:
    table = {**TINY_TABLE, "profile": name}
    (tmp_path / "ablations.yaml").write_text(yaml.safe_dump(table))
    if profile is not None:
        (tmp_path / name).write_text(yaml.safe_dump(profile))
    return tmp_path / "ablations.yaml"


def _load(path: Path):
    return load_ablations(path, ROOT / "dvc.yaml", ROOT / "params.yaml")


def test_dotted_flattens_nested_sections():
    assert dotted({"a": {"b": 1, "c": {"d": [2, 3]}}, "e": {}}) == {
        "a.b": 1,
        "a.c.d": [2, 3],
        "e": {},
    }


def test_the_profile_goes_under_each_rows_own_overrides(tmp_path):
    profile = {"train": {"epochs": 7, "deterministic_cpu": True}, "augment": {"replicate": True}}
    ablations = _load(_project(tmp_path, profile))
    base, rep, other = ablations.table("tiny").rows
    assert base.overrides == {
        "train.epochs": 7,
        "train.deterministic_cpu": True,
        "augment.replicate": False,  # the row's own value wins
    }
    assert rep.overrides["train.epochs"] == 7 and rep.overrides["augment.replicate"] is True
    assert other.overrides is None  # a row that is not run gets nothing
    experiment = plan([ablations.table("tiny")], [0])[("tiny", "base", 0)].experiment
    command = experiment.command()
    assert "++train.epochs=7" in command and "++augment.replicate=false" in command


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        (None, r"ablations.yaml: profile 'profile.yaml': expected a preset file .* no such file"),
        ([1, 2], r"ablations.yaml: profile 'profile.yaml': expected a preset file .* found list"),
        ({"train": {"epochs": 0}}, r"ablations.yaml: table tiny row base: .*train.epochs"),
        (
            {"train": {"epoch": 3}},
            r"ablations.yaml: table tiny row base: .*train.epoch: unknown key",
        ),
    ],
)
def test_a_bad_profile_is_one_clear_message(tmp_path, profile, message):
    path = _project(tmp_path, None)
    if profile is not None:
        (tmp_path / "profile.yaml").write_text(yaml.safe_dump(profile))
    with pytest.raises(PipelineError, match=message):
        _load(path)


def test_the_shipped_tables_run_the_tables_profile_not_the_quick_default():
    ablations = load_ablations(ROOT / "ablations.yaml", ROOT / "dvc.yaml", ROOT / "params.yaml")
    assert ablations.profile == "presets/tables-synthetic.yaml"
    profile = dotted(yaml.safe_load((ROOT / ablations.profile).read_text()))
    default = dotted(yaml.safe_load((ROOT / "params.yaml").read_text()))
    assert any(default[key] != value for key, value in profile.items())
    raw = yaml.safe_load((ROOT / "ablations.yaml").read_text())
    own = {
        (table["id"], row["name"]): set(row.get("overrides") or {})
        for table in raw["tables"]
        for row in table["rows"]
    }
    for table in ablations.tables:
        for row in filter(lambda r: r.runnable, table.rows):
            for key, value in profile.items():
                if key not in own[(table.id, row.name)]:
                    assert row.overrides[key] == value, (table.id, row.name, key)
