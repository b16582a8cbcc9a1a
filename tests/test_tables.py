"""The tables command: definitions, experiments over seeds, rendering, sharing with a remote.

The end-to-end test runs a tiny table (2 rows x 2 seeds) as queued DVC experiments in a
temporary git repository, checks the rendered means against the experiments' own metrics,
then pushes the experiments to a bare git remote and a DVC remote directory, pulls them
into a fresh clone and renders the same table there.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.ablations import Experiment, load_ablations, override_text, plan
from pipeline.errors import PipelineError
from pipeline.metrics import segment_metrics
from pipeline.tables import order_line, start_detached, table_numbers
from tests.test_e2e import TINY_DATA, _dvc, _git, _run, copy_project

ROOT = Path(__file__).resolve().parents[1]

TINY_TABLE = {
    "tables": [
        {
            "id": "tiny",
            "caption": "Replicate on the tiny store",
            "seed": "001_3cb3211ee4bd772e.txt",
            "ref": "Table 2",
            "metrics": ["accuracy", "non_ave_f1"],
            "reference": "base",
            "rows": [
                {
                    "name": "base",
                    "label": "DPNet",
                    "overrides": {"augment.replicate": False},
                    "targets": ["evaluate@sel"],
                    "result": "sel",
                    "output": "model",
                    "paper": {"o_ave": {"accuracy": 77.5}},
                },
                {
                    "name": "rep",
                    "label": "DPNet + Replicate",
                    "overrides": {"augment.link": False},
                    "targets": ["evaluate@sel"],
                    "result": "sel",
                    "output": "model",
                    "paper": {"o_ave": {"accuracy": 78.08}},
                },
                {"name": "other", "label": "PSP", "not_run": "not implemented here"},
            ],
        }
    ]
}


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "ablations.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _load(path: Path):
    return load_ablations(path, ROOT / "dvc.yaml", ROOT / "params.yaml")


def test_the_shipped_definitions_are_valid_and_cover_the_papers_tables():
    ablations = load_ablations(ROOT / "ablations.yaml", ROOT / "dvc.yaml", ROOT / "params.yaml")
    refs = {(t.seed[:3], t.ref) for t in ablations.tables}
    assert {("001", "Table 2"), ("001", "Table 3"), ("000", "Fig. 2")} <= refs
    assert {("002", "Table 3"), ("002", "Table 4"), ("002", "Fig. 7a"), ("002", "Fig. 7d")} <= refs
    assert {("004", "Table 1"), ("004", "Table 3"), ("004", "Table 4"), ("004", "Table 7")} <= refs
    t2 = ablations.table("dpnet-t2")
    assert t2.row("dpnet+replicate+link").paper.c_ave == {"accuracy": 79.68}


def _mutated(change) -> dict:
    data = json.loads(json.dumps(TINY_TABLE))
    change(data["tables"][0])
    return data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.update(colour="red"), r"tables\[0\] \(tiny\)\.colour: Extra inputs"),
        (lambda t: t["rows"][0].pop("name"), r"rows\[0\]\.name: Field required"),
        (
            lambda t: t["rows"][1]["overrides"].update({"augment.colour": 1}),
            r"table tiny row rep: override 'augment.colour': no stage reads this key",
        ),
        (
            # evaluate is declared whole by its stage: the params schema rejects the key
            lambda t: t["rows"][1]["overrides"].update({"evaluate.colour": 1}),
            r"row rep: params.yaml: evaluate.colour: unknown key",
        ),
        (
            lambda t: t["rows"][1]["overrides"].update({"model.blocks": 0}),
            r"row rep: params.yaml: model.blocks: Input should be greater than or equal to 1",
        ),
        (
            lambda t: t["rows"][1]["overrides"].update({"model.name": "dpnett"}),
            r"row rep: params.yaml: model.name: Input should be 'ave', 'dpnet'",
        ),
        (
            lambda t: t["rows"][1]["overrides"].update({"model.name": "ave", "model.blocks": 6}),
            r"row rep: model.blocks: not read by model 'ave', which reads attention_dim",
        ),
        (
            lambda t: t["rows"][1]["overrides"].update(
                {"model.name": "edrnet", "model.kernel": 5, "model.layers": 4}
            ),
            r"row rep: params.yaml: model: EDRNet model.layers: expected an integer in \[1, 2\]",
        ),
        (lambda t: t["rows"][1].update(targets=["evaluate@test"]), r"unknown target\(s\)"),
        (lambda t: t.update(reference="other"), r"reference 'other' is not a runnable row"),
        (lambda t: t["rows"][2].update(result="sel"), r"a not_run row has no overrides"),
        (lambda t: t["rows"][1].pop("output"), r"needs overrides, targets, result and output"),
        (
            lambda t: t["rows"][1]["overrides"].update({"train.seed": 3}),
            r"train.seed is set per seed by the tables command",
        ),
    ],
)
def test_definition_errors_are_one_clear_message(tmp_path, change, message):
    with pytest.raises(PipelineError, match=message):
        _load(_write(tmp_path, _mutated(change)))


def test_plan_shares_experiments_between_rows_with_the_same_overrides(tmp_path):
    ablations = _load(_write(tmp_path, TINY_TABLE))
    data = _mutated(lambda t: t["rows"].append({**t["rows"][0], "name": "b2", "label": "x"}))
    data["tables"][0]["rows"][-1].update(output="model_b2ilc")
    shared = _load(_write(tmp_path, data))
    cells = plan(shared.tables, [0, 1])
    assert cells[("tiny", "base", 0)].experiment == cells[("tiny", "b2", 0)].experiment
    assert cells[("tiny", "base", 0)].experiment != cells[("tiny", "base", 1)].experiment
    assert len({c.experiment for c in cells.values()}) == 4
    assert ("tiny", "other", 0) not in cells  # not_run rows have no experiment
    assert plan(ablations.tables, [0])[("tiny", "rep", 0)].experiment.command() == [
        "exp", "run", "--queue", "-n", cells[("tiny", "rep", 0)].experiment.name,
        "-S", "augment.link=false", "-S", "train.seed=0", "evaluate@sel",
    ]  # fmt: skip


def test_override_text_round_trips_through_yaml():
    for value in (True, 0.01, 3, "ave", ["a", "v"]):
        assert yaml.safe_load(override_text(value)) == value
    with pytest.raises(PipelineError, match="only plain words"):
        override_text("two words")
    assert Experiment((), 0, ("evaluate@sel",)).name == Experiment((), 0, ("evaluate@sel",)).name


class _FakeRuns:
    """Predictions by experiment name, as :class:`pipeline.tables.Runs` reads them."""

    def __init__(self, by_name: dict[str, dict]) -> None:
        self.by_name = by_name

    def predictions(self, cell):
        return self.by_name.get(cell.experiment.name)


def test_table_numbers_and_order_on_constructed_predictions(tmp_path):
    ablations = _load(_write(tmp_path, TINY_TABLE))
    table = ablations.tables[0]
    cells = plan([table], [0, 1])
    rng = np.random.default_rng(0)
    labels = rng.choice([1, 28], size=(40, 10))
    worse = np.where(rng.random((40, 10)) < 0.4, 28 - labels + 1, labels)
    by_name = {}
    for seed in (0, 1):
        by_name[cells[("tiny", "base", seed)].experiment.name] = {"labels": labels, "model": worse}
        better = np.where(np.arange(40)[:, None] < 20, labels, worse)
        by_name[cells[("tiny", "rep", seed)].experiment.name] = {"labels": labels, "model": better}
    numbers = table_numbers(table, [0, 1], cells, _FakeRuns(by_name), "o_ave")
    rep = numbers["rep"]
    assert rep["summary"]["accuracy"]["mean"] == pytest.approx(
        segment_metrics(labels, np.where(np.arange(40)[:, None] < 20, labels, worse))["accuracy"]
    )
    assert rep["summary"]["accuracy"]["std"] == 0.0  # both seeds predicted the same
    assert rep["diff"]["accuracy"]["ci_low"] > 0  # the paired CI sees the certain gain
    assert numbers["base"]["diff"] is None and numbers["other"] is None
    line = order_line(table, numbers, "o_ave", "accuracy")
    assert "**reproduced**" in line and "base < rep" in line


# ------------------------------------------------------------------------- end to end


def _tiny_repo(path: Path) -> Path:
    path.mkdir()
    copy_project(path)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["synthetic"].update(TINY_DATA)
    params["model"].update({"hidden": 8})
    params["train"].update({"epochs": 1, "batch_size": 16, "device": "cpu"})
    params["augment"].update({"replicas_per_video": 2, "smb_per_class": 0})
    params["evaluate"].update({"device": "cpu", "timeline_videos": 1, "bootstrap": 50})
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _write(path, TINY_TABLE)
    _git(path, "init", "-q")
    _git(path, "add", "-A")
    _git(path, "commit", "-qm", "tiny pipeline")
    return path


def _tables(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return _run([sys.executable, "-m", "pipeline.tables", *args], repo)


def _accuracy(repo: Path, experiment: str) -> float:
    show = subprocess.run(
        ["git", "show", f"{experiment}:metrics/evaluate/sel.json"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(show.stdout)["model"]["accuracy"]


@pytest.mark.e2e
def test_starting_the_queue_does_not_wait_for_its_background_workers(tmp_path):
    # `dvc queue start` leaves workers holding its stdout; a pipe would block until they end
    marker = tmp_path / "worker-done"
    command = ["sh", "-c", f"(sleep 3; touch {marker}) & echo started"]
    assert start_detached(command).strip() == "started"
    assert not marker.exists()  # returned while the background worker still ran
    with pytest.raises(PipelineError, match=r"exit 3: failed$"):
        start_detached(["sh", "-c", "echo failed; exit 3"])


def test_tiny_table_runs_renders_and_travels_through_remotes(tmp_path):
    repo = _tiny_repo(tmp_path / "repo")
    out = _tables(repo, "run", "tiny", "--seeds", "2").stdout
    assert "0 experiments reused, 4 to run" in out
    text = (repo / "reports" / "tables" / "tiny.md").read_text()
    assert (repo / "reports" / "tables" / "tiny.png").stat().st_size > 0
    assert "[tiny](tiny.md)" in (repo / "reports" / "tables" / "README.md").read_text()
    assert "not run: not implemented here" in text and "synthetic" in text
    # the rendered mean of each row is the mean of its experiments' own metrics
    cells = plan(load_ablations(repo / "ablations.yaml", repo / "dvc.yaml").tables, [0, 1])
    for row in ("base", "rep"):
        names = [cells[("tiny", row, seed)].experiment.name for seed in (0, 1)]
        head = _run(["git", "rev-parse", "HEAD"], repo).stdout.strip()
        refs = [f"refs/exps/{head[:2]}/{head[2:]}/{name}" for name in names]
        mean = np.mean([_accuracy(repo, ref) for ref in refs])
        line = next(line for line in text.splitlines() if f"(`{row}`)" in line)
        assert re.search(rf"\*\*{100 * mean:.1f}\*\* \[", line), (line, mean)
    # a second run reuses everything
    assert "4 experiments reused, 0 to run" in _tables(repo, "run", "tiny", "--seeds", "2").stdout
    # share through a bare git remote and a DVC remote directory, render in a fresh clone
    remote, storage = tmp_path / "remote.git", tmp_path / "dvc-storage"
    _run(["git", "init", "-q", "--bare", str(remote)], tmp_path)
    _git(repo, "remote", "add", "origin", str(remote))
    _git(repo, "push", "-q", "origin", "HEAD:refs/heads/main")
    _dvc(repo, "remote", "add", "-d", "--local", "storage", str(storage))
    _dvc(repo, "exp", "push", "--all-commits", "origin")
    clone = tmp_path / "clone"
    _run(["git", "clone", "-q", "-b", "main", str(remote), str(clone)], tmp_path)
    _dvc(clone, "remote", "add", "-d", "--local", "storage", str(storage))
    _dvc(clone, "exp", "pull", "--all-commits", "origin")
    _tables(clone, "render", "tiny", "--seeds", "2")
    assert (clone / "reports" / "tables" / "tiny.md").read_text() == text
