"""The tables command: definitions, experiments over seeds, rendering, sharing with a remote.

The end-to-end test runs a tiny table (2 rows x 2 seeds) as queued DVC experiments in a
temporary git repository, checks the rendered means against the experiments' own metrics,
then pushes the experiments to a bare git remote and a DVC remote directory, pulls them
into a fresh clone and renders the same table there.
"""

import hashlib
import json
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.errors import PipelineError
from pipeline.evaluation.metrics import segment_metrics
from pipeline.evaluation.stats import seed_summary
from pipeline.experiments import tables
from pipeline.experiments.ablations import Experiment, load_ablations, override_text, plan
from pipeline.experiments.reuse import (
    code_deps,
    inputs_key,
    inputs_unchanged,
    require_clean_head,
)
from pipeline.experiments.tables import (
    NOT_COMPUTED,
    SYNTHETIC_FINDINGS,
    ZERO_DIVISION_NOTE,
    order_pairs,
    render_markdown,
    start_detached,
    table_numbers,
    verdict,
)
from tests.test_e2e import TINY_DATA, _dvc, _git, _run, copy_project

ROOT = Path(__file__).resolve().parents[2]

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
    assert t2.row("dpnet+replicate+link").paper.c_ave == {"accuracy": Decimal("79.68")}
    assert str(t2.row("dpnet").paper.o_ave["accuracy"]) == "77.50"  # as printed, not 77.5


COMPARISONS = (
    "dpnet-t1-sel",
    "dpnet-t1-wsel",
    "edrnet-t2-sel",
    "edrnet-t2-wsel",
    "tlr-t2",
    "tlr-t5",
)


def test_comparison_tables_run_the_methods_with_public_code_and_print_the_others():
    ablations = load_ablations(ROOT / "ablations.yaml", ROOT / "dvc.yaml", ROOT / "params.yaml")
    refs = {(t.seed[:3], t.ref) for t in ablations.tables}
    assert {("001", "Table 1"), ("002", "Table 2"), ("004", "Table 2"), ("004", "Table 5")} <= refs
    models = {"psp": "psp", "cmran": "cmran", "cmra": "cmran", "ave": "ave"}
    for table_id in COMPARISONS:
        for row in ablations.table(table_id).rows:
            if row.name in models:
                assert row.runnable and row.overrides["model.name"] == models[row.name]
            if row.runnable and row.overrides.get("model.name") in ("psp", "cmran"):
                # unpinned, every one of them (ablations.yaml header): shared runs stay shared
                assert row.overrides["train.deterministic_cpu"] is False, (table_id, row.name)
            if row.name in ("avt", "cman", "avsdn", "avfb", "avin"):
                assert "no public code" in row.not_run
                assert row.paper.o_ave["accuracy"] is not None
    assert str(ablations.table("dpnet-t1-sel").row("psp").paper.c_ave["accuracy"]) == "77.80"
    t5 = ablations.table("tlr-t5")
    assert t5.row("psp+a+lr").result == "wsel_refined" and t5.row("psp").result == "wsel"
    cells = plan([ablations.table(i) for i in COMPARISONS], [0])
    shared = {
        cells[(t, "psp", 0)].experiment for t in ("dpnet-t1-wsel", "edrnet-t2-wsel", "tlr-t5")
    }
    assert len(shared) == 1  # PSP's weak Step-1 run serves three tables


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
            r"row rep: override evaluate.colour: unknown key",
        ),
        (
            lambda t: t["rows"][1]["overrides"].update({"model.blocks": 0}),
            r"row rep: override model.blocks: Input should be greater than or equal to 1",
        ),
        (
            lambda t: t["rows"][1]["overrides"].update({"model.name": "dpnett"}),
            r"row rep: override model.name: Input should be 'ave', 'cmran', 'dpnet'.*"
            r"\(did you mean 'dpnet'",
        ),
        (
            lambda t: t["rows"][1]["overrides"].update({"model.name": "ave", "model.blocks": 6}),
            r"row rep: model.blocks: not read by model 'ave', which reads attention_dim",
        ),
        (
            lambda t: t["rows"][1]["overrides"].update(
                {"model.name": "edrnet", "model.kernel": 5, "model.layers": 4}
            ),
            r"row rep: override model: EDRNet model.layers: expected an integer in \[1, 2\]",
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


def test_another_model_in_params_yaml_breaks_only_the_tables_that_need_dpnet(tmp_path):
    # a row that names no model runs params.yaml's: with the AVE baseline there, DPNet's
    # blocks sweep cannot run, and says so when selected; every other table still loads
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["model"]["name"] = "ave"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    ablations = load_ablations(ROOT / "ablations.yaml", ROOT / "dvc.yaml", tmp_path / "params.yaml")
    assert ablations.table("tlr-t3").id == "tlr-t3"
    blocks = next(t.id for t in ablations.tables if t.id.startswith("dpnet-supp-f2"))
    with pytest.raises(
        PipelineError,
        match=r"row blocks-1: model.blocks: not read by model 'ave'.*"
        r"names no model.name",
    ):
        ablations.table(blocks)
    with pytest.raises(PipelineError, match="not read by model 'ave'"):
        ablations.select(["all"])
    with pytest.raises(PipelineError, match=r"unknown table 'tlr-t33' \(did you mean 'tlr-t3'"):
        ablations.table("tlr-t33")


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
        "-S", "++augment.link=false", "-S", "++train.seed=0", "evaluate@sel",
    ]  # fmt: skip


def test_every_shipped_experiment_applies_to_the_shipped_params_as_dvc_applies_it(tmp_path):
    """DVC's own handling of ``dvc exp run -S`` (its Hydra overrides) on the shipped
    ``params.yaml``, for every experiment of every table: the file then holds each value and
    validates, and every key a row sets is already in the file (``schema --write`` puts
    every registered model's keys there), so a plain ``-S`` would take it too."""
    from dvc.utils.hydra import apply_overrides

    from pipeline.config.params import load_params

    ablations = load_ablations(ROOT / "ablations.yaml", ROOT / "dvc.yaml", ROOT / "params.yaml")
    experiments = {cell.experiment for cell in plan(ablations.tables, [1]).values()}
    absent = set()
    for experiment in experiments:
        params = tmp_path / "params.yaml"
        params.write_text((ROOT / "params.yaml").read_text())
        arguments = experiment.command(queue=False)
        settings = [arguments[i + 1] for i, arg in enumerate(arguments) if arg == "-S"]
        apply_overrides(params, settings)
        applied = load_params(("model", "train", "augment", "refine"), params)
        for key, text in (*experiment.overrides, ("train.seed", "1")):
            section, name = key.split(".")
            assert applied[section][name] == yaml.safe_load(text), (experiment.name, key)
            if name not in yaml.safe_load((ROOT / "params.yaml").read_text())[section]:
                absent.add(key)
    assert not absent  # no key a plain -S would refuse


def test_a_table_finds_the_experiments_made_when_it_ran_beside_others(tmp_path):
    """``run t3 t5`` merges rows with the same overrides into one experiment; ``render t5``
    alone (and ``render all``) must still find it, and ``run t5`` must not run it again."""
    from pipeline.experiments.reuse import served_by
    from pipeline.experiments.tables import Runs

    t3 = json.loads(json.dumps(TINY_TABLE["tables"][0]))
    t3["rows"][1]["targets"] = ["evaluate@sel", "evaluate@wsel"]  # `rep`: more targets
    t5 = json.loads(json.dumps(TINY_TABLE["tables"][0]))
    t5["id"] = "t5"
    t5["rows"] = [t5["rows"][0], {**t5["rows"][1], "name": "rep5"}]  # `rep5`: evaluate@sel only
    every = _load(_write(tmp_path, {"tables": [t3, t5]})).tables
    together = plan(every, [0])
    alone = plan([every[1]], [0], every)
    merged = together[("t5", "rep5", 0)].experiment
    assert merged.targets == ("evaluate@sel", "evaluate@wsel")
    assert alone[("t5", "rep5", 0)].experiment != merged
    assert merged in alone[("t5", "rep5", 0)].alternatives
    # and the other way: a table run alone serves the rows of a wider selection
    narrow = alone[("t5", "rep5", 0)].experiment
    assert narrow in together[("t5", "rep5", 0)].alternatives
    assert narrow not in together[("tiny", "rep", 0)].alternatives  # it lacks evaluate@wsel
    runs = Runs.__new__(Runs)
    runs.commits, runs._cache = {merged.name: "c0ffee"}, {}
    assert runs.commit(alone[("t5", "rep5", 0)]) == "c0ffee"
    assert runs.commit(alone[("t5", "base", 0)]) is None
    served = served_by(alone.values())
    assert merged in served[narrow.name]  # run_experiments counts it as reuse
    # rows that share one experiment are served only by what serves every one of them
    assert served_by(together.values())[merged.name] == ()


def test_override_text_round_trips_through_yaml():
    for value in (True, 0.01, 3, "ave", ["a", "v"]):
        assert yaml.safe_load(override_text(value)) == value
    with pytest.raises(PipelineError, match="only plain words"):
        override_text("two words")
    definition = json.dumps([[], 0, ["evaluate@sel"]])
    name = "abl-" + hashlib.sha1(definition.encode()).hexdigest()[:12]
    assert Experiment((), 0, ("evaluate@sel",)).name == name
    assert Experiment((), 1, ("evaluate@sel",)).name != name
    assert Experiment((("a.b", "1"),), 0, ("evaluate@sel",)).name != name


class _FakeRuns:
    """Predictions by experiment name, as :class:`pipeline.experiments.tables.Runs` reads them."""

    def __init__(self, by_name: dict[str, dict]) -> None:
        self.by_name = by_name

    def predictions(self, cell):
        return self.by_name.get(cell.experiment.name)


def _predictions(cells, rows_by_seed: dict, labels, right_labels=None) -> _FakeRuns:
    """Runs whose experiment for ``(row, seed)`` predicted ``rows_by_seed[row][seed]``."""
    by_name = {}
    for row, per_seed in rows_by_seed.items():
        for seed, predictions in enumerate(per_seed):
            saved = {"labels": labels, "model": predictions}
            if right_labels is not None:
                saved["right_labels"] = right_labels
            by_name[cells[("tiny", row, seed)].experiment.name] = saved
    return _FakeRuns(by_name)


def _noisy(labels: np.ndarray, share: float, seed: int) -> np.ndarray:
    """``labels`` with a ``share`` of segments swapped between class 1 and background."""
    flip = np.random.default_rng(seed).random(labels.shape) < share
    return np.where(flip, 28 - labels + 1, labels)


def test_table_numbers_over_seeds_that_differ(tmp_path):
    table = _load(_write(tmp_path, TINY_TABLE)).tables[0]
    cells = plan([table], [0, 1])
    labels = np.random.default_rng(0).choice([1, 28], size=(40, 10))
    base = [_noisy(labels, 0.4, 1), _noisy(labels, 0.3, 2)]
    fixed = np.arange(40)[:, None] < 20  # rep fixes the first 20 videos of each seed
    rep = [np.where(fixed, labels, p) for p in base]
    runs = _predictions(cells, {"base": base, "rep": rep}, labels)
    numbers = table_numbers(table, [0, 1], cells, runs, "o_ave")
    accuracies = [segment_metrics(labels, p)["accuracy"] for p in rep]
    found = numbers["rep"]["summary"]["accuracy"]
    assert accuracies[0] != accuracies[1]
    assert found["mean"] == pytest.approx(np.mean(accuracies))
    assert found["std"] == pytest.approx(np.std(accuracies, ddof=1))
    assert found == seed_summary(labels, rep, ["accuracy", "non_ave_f1"])["accuracy"]
    assert numbers["rep"]["diff"]["accuracy"]["ci_low"] > 0  # the paired CI sees the gain
    assert numbers["base"]["diff"] is None and numbers["other"] is None


def test_order_verdict_per_adjacent_pair_from_the_paired_ci(tmp_path):
    assert verdict(Decimal("0.58"), 0.01, 0.03) == "agrees"
    assert verdict(Decimal("0.58"), -0.03, -0.01) == "contradicts"
    assert verdict(Decimal("-1.2"), -0.03, -0.01) == "agrees"
    assert verdict(Decimal("0.58"), -0.01, 0.02) == "cannot tell"
    assert verdict(Decimal("0.00"), 0.01, 0.02) == "contradicts"  # the paper prints a tie
    # three rows: base < rep by a certain margin (paper: 77.50 < 78.08), then rep2 equal to
    # rep where the paper says higher again: cannot tell
    data = _mutated(lambda t: t["rows"].insert(2, {**t["rows"][1], "name": "rep2"}))
    data["tables"][0]["rows"][2]["overrides"] = {"augment.link": False, "model.dropout": 0.1}
    data["tables"][0]["rows"][2]["paper"] = {"o_ave": {"accuracy": 79.1}}
    table = _load(_write(tmp_path, data)).tables[0]
    cells = plan([table], [0, 1])
    labels = np.random.default_rng(0).choice([1, 28], size=(40, 10))
    base = [_noisy(labels, 0.4, 1), _noisy(labels, 0.3, 2)]
    rep = [np.where(np.arange(40)[:, None] < 20, labels, p) for p in base]
    runs = _predictions(cells, {"base": base, "rep": rep, "rep2": rep}, labels)
    numbers = table_numbers(table, [0, 1], cells, runs, "o_ave")
    pairs = order_pairs(table, numbers, "o_ave")
    assert [(p["a"], p["b"]) for p in pairs] == [("base", "rep"), ("rep", "rep2")]
    first, second = (p["metrics"]["accuracy"] for p in pairs)
    assert first["paper"] == Decimal("0.58") and first["verdict"] == "agrees"
    assert second["paper"] == Decimal("1.02") and second["verdict"] == "cannot tell"
    assert (second["diff"], second["ci_low"], second["ci_high"]) == (0.0, 0.0, 0.0)
    assert first["diff"] == pytest.approx(numbers["rep"]["diff"]["accuracy"]["diff"])
    # swapped rows: the same certain difference now contradicts the paper
    swapped = _predictions(cells, {"base": rep, "rep": base, "rep2": base}, labels)
    numbers = table_numbers(table, [0, 1], cells, swapped, "o_ave")
    assert order_pairs(table, numbers, "o_ave")[0]["metrics"]["accuracy"]["verdict"] == (
        "contradicts"
    )
    text = render_markdown(table, [0, 1], {"o_ave": numbers}, "synthetic")
    assert "| `base` → `rep` | paper +0.58<br>ours -" in text and "**contradicts**" in text
    assert "1 contradicts, 1 cannot tell" in text
    assert SYNTHETIC_FINDINGS in text  # where the reasons are written
    assert SYNTHETIC_FINDINGS not in render_markdown(table, [0, 1], {"o_ave": numbers}, "local")


def test_rendering_prints_the_paper_as_printed_and_the_c_ave_column(tmp_path):
    data = json.loads(json.dumps(TINY_TABLE))
    data["tables"][0]["rows"][1]["paper"]["c_ave"] = {"accuracy": 78.70}
    path = _write(tmp_path, data)
    text = path.read_text().replace("78.7\n", "78.70\n").replace("77.5\n", "77.50\n")
    path.write_text(text)  # as a paper prints them
    table = _load(path).tables[0]
    cells = plan([table], [0, 1])
    labels = np.random.default_rng(0).choice([1, 28], size=(40, 10))
    right = np.where(np.arange(40)[:, None] < 5, 1, labels)  # corrected labels differ
    rows = {"base": [_noisy(labels, 0.4, 1), _noisy(labels, 0.3, 2)]}
    rows["rep"] = [np.where(np.arange(40)[:, None] < 20, labels, p) for p in rows["base"]]
    runs = _predictions(cells, rows, labels, right)
    o_ave = table_numbers(table, [0, 1], cells, runs, "o_ave")
    # without corrected scores: the paper's C-AVE column, our cells not computed
    text = render_markdown(table, [0, 1], {"o_ave": o_ave, "c_ave": None}, "synthetic")
    o_part, c_part = text.split("## corrected labels (C-AVE)")
    assert "paper 77.50" in o_part and "paper 78.08" in o_part
    assert NOT_COMPUTED in c_part and ZERO_DIVISION_NOTE in o_part
    rep_line = next(line for line in c_part.splitlines() if "(`rep`)" in line)
    assert rep_line.endswith("| not computed<br>paper 78.70 | not computed<br>paper – |")
    assert "Order of" not in c_part
    # with corrected scores: our numbers on the right labels, beside the paper's
    c_ave = table_numbers(table, [0, 1], cells, runs, "c_ave")
    mean = np.mean([segment_metrics(right, p)["accuracy"] for p in rows["rep"]])
    assert mean != pytest.approx(o_ave["rep"]["summary"]["accuracy"]["mean"])
    text = render_markdown(table, [0, 1], {"o_ave": o_ave, "c_ave": c_ave}, "synthetic")
    c_part = text.split("## corrected labels (C-AVE)")[1]
    rep_line = next(line for line in c_part.splitlines() if "(`rep`)" in line)
    assert rep_line.startswith(f"| DPNet + Replicate (`rep`) | **{100 * mean:.1f}** [")
    assert "paper 78.70" in rep_line and NOT_COMPUTED not in text


def test_regime_says_how_each_kind_of_row_was_trained():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"].update({"epochs": 30, "step_size": 10, "milestones": [20, 30]})
    params["augment"].update({"replicate": False, "smb_per_class": 250})
    assert tables.regime(params, "sel", avvp=False) == (
        "dpnet, 30 epochs; adam lr 0.001, batch 48; cosine restarts every 10 epochs, "
        "floors [0.1, 0.01] ending at epochs [20, 30]; Replicate off, Link on (graph models "
        "only); SMB 250 fused videos per class"
    )
    params["train"].update({"scheduler": "step", "gamma": 0.5, "step_size": 4})
    params["refine"].update({"auxiliary": False, "retrain_epochs": 30})
    assert tables.regime(params, "wsel_refined", avvp=False) == (
        "dpnet, 30 epochs; adam lr 0.001, batch 48; step decay x0.5 every 4 epochs; "
        "Step 1 without the auxiliary objective; retrained 30 epochs on refined labels "
        "(N 4, s 2, tau 0.05)"
    )
    assert tables.regime(params, "wsel", avvp=False).endswith(
        "; Step 1 without the auxiliary objective"
    )
    assert tables.regime(params, "han", avvp=True) == (
        "han, 12 epochs; adam lr 0.0003, batch 16; step decay x0.1 every 10 epochs"
    )


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
    return _run([sys.executable, "-m", "pipeline.experiments.tables", *args], repo)


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


def _tasks(**states: str) -> dict[str, tuple[str, str]]:
    """``dvc queue status`` tasks named after their experiment: ``t-a`` runs ``a``."""
    return {f"t-{name}": (name, state) for name, state in states.items()}


def test_waiting_restarts_the_queue_workers_that_stopped_with_tasks_queued(monkeypatch):
    # treeverse/dvc#10562: a worker stops while tasks are queued; with none left, no end
    polls = iter(
        [
            (_tasks(a="Running", b="Queued"), 2),
            (_tasks(a="Success", b="Queued"), 1),  # once short: may be a worker between tasks
            (_tasks(a="Success", b="Queued"), 1),  # twice: start the missing one
            (_tasks(a="Success", b="Running", other="Queued"), 1),  # not our task queued
            (_tasks(a="Success", b="Running", other="Queued"), 1),
            (_tasks(a="Success", b="Failed"), 0),
        ]
    )
    started: list[int] = []
    monkeypatch.setattr(tables, "_queue_status", lambda: next(polls))
    monkeypatch.setattr(tables, "_start_workers", started.append)
    finished = tables.wait_for_queue({"a", "b"}, jobs=2, poll=0, grace=0)
    assert finished == {"a": "Success", "b": "Failed"}
    assert started == [2]
    assert next(polls, None) is None  # it stopped polling when both had ended


def test_workers_just_started_are_not_started_twice(monkeypatch):
    # right after `dvc queue start`, its workers are not yet listed; starting again then
    # made four workers of two
    polls = iter([(_tasks(a="Queued"), 0)] * 3 + [(_tasks(a="Success"), 2)])
    started: list[int] = []
    monkeypatch.setattr(tables, "_queue_status", lambda: next(polls))
    monkeypatch.setattr(tables, "_start_workers", started.append)
    assert tables.wait_for_queue({"a"}, jobs=2, poll=0, grace=3600) == {"a": "Success"}
    assert started == []


def test_running_tasks_count_as_workers_when_the_status_lists_none(monkeypatch):
    # under load celery's ping times out: "0 active" while two workers run a task each
    started: list[int] = []
    monkeypatch.setattr(tables, "_start_workers", started.append)

    def wait(busy: dict, done: dict) -> None:
        polls = iter([(busy, 0)] * 3 + [(done, 0)])
        monkeypatch.setattr(tables, "_queue_status", lambda: next(polls))
        tables.wait_for_queue({name for name, _ in done.values()}, jobs=2, poll=0, grace=0)

    wait(
        _tasks(a="Running", b="Running", c="Queued"), _tasks(a="Success", b="Success", c="Success")
    )
    assert started == []
    wait(_tasks(a="Running", c="Queued"), _tasks(a="Success", c="Success"))
    assert started == [2]  # one worker short: start the missing one


def test_a_task_that_ended_before_this_run_does_not_finish_its_namesake(monkeypatch):
    # an experiment stopped by hand stays listed as Failed under the same name
    polls = iter(
        [
            ({"old": ("a", "Failed"), "new": ("a", "Running")}, 2),
            ({"old": ("a", "Failed"), "new": ("a", "Success")}, 2),
        ]
    )
    monkeypatch.setattr(tables, "_queue_status", lambda: next(polls))
    monkeypatch.setattr(tables, "_start_workers", lambda jobs: None)
    assert tables.wait_for_queue({"a"}, jobs=2, poll=0, earlier={"old"}) == {"a": "Success"}
    assert next(polls, None) is None  # the second poll, not the first, ended the wait


def test_an_experiment_already_in_the_queue_is_waited_for_not_queued_again(monkeypatch):
    first, second = Experiment((), 0, ("evaluate@sel",)), Experiment((), 1, ("evaluate@sel",))
    queued: list[list[str]] = []
    monkeypatch.setattr(tables, "require_clean_head", lambda: None)
    monkeypatch.setattr(tables, "head", lambda: "0" * 40)
    monkeypatch.setattr(tables, "reusable_experiments", lambda commit: {})
    status = {"t1": (first.name, "Running"), "t0": (second.name, "Failed")}
    monkeypatch.setattr(tables, "_queue_status", lambda: (status, 2))
    monkeypatch.setattr(tables, "_dvc", lambda *args: queued.append(list(args)) or "")
    monkeypatch.setattr(tables, "_start_workers", lambda jobs: None)
    waited: list[tuple[set[str], set[str]]] = []
    monkeypatch.setattr(
        tables,
        "wait_for_queue",
        lambda names, jobs, poll, earlier: waited.append((names, earlier)) or {},
    )
    tables.run_experiments([first, second], jobs=2)
    assert queued == [second.command()]  # the first is running; the second ended earlier
    assert waited == [({first.name, second.name}, {"t0"})]


def test_the_worker_count_is_read_from_dvc_queue_status(monkeypatch):
    text = (
        "Task     Name              Created    Status\n"
        "f7110fd  abl-3c52139a580e  10:16 AM   Running\n"
        "65f6b2d  abl-4daac065778d  10:16 AM   Queued\n"
        "d701fbe  abl-3c52139a580e  05:27 PM   Failed\n\n"
        "Worker status: 1 active, 1 idle\n"
    )
    monkeypatch.setattr(tables, "_dvc", lambda *args: text)
    tasks = {
        "f7110fd": ("abl-3c52139a580e", "Running"),
        "65f6b2d": ("abl-4daac065778d", "Queued"),
        "d701fbe": ("abl-3c52139a580e", "Failed"),
    }
    assert tables._queue_status() == (tasks, 2)
    monkeypatch.setattr(tables, "_dvc", lambda *args: "No experiment tasks in the queue.\n")
    assert tables._queue_status() == ({}, 0)


def test_tiny_table_runs_renders_and_travels_through_remotes(tmp_path):
    repo = _tiny_repo(tmp_path / "repo")
    out = _tables(repo, "run", "tiny", "--seeds", "2").stdout
    assert "0 experiments reused, 4 to run" in out
    text = (repo / "reports" / "tables" / "tiny.md").read_text()
    assert (repo / "reports" / "tables" / "tiny.png").stat().st_size > 0
    assert "[tiny](tiny.md)" in (repo / "reports" / "tables" / "README.md").read_text()
    assert "not run: not implemented here" in text and "synthetic" in text
    # each row's regime is read from its own run's params.yaml (tiny: 1 epoch, batch 16)
    assert "| `base` | dpnet, 1 epochs; adam lr 0.001, batch 16; " in text
    assert "Replicate off, Link on (graph models only) |" in text  # base
    assert "Replicate on, Link off (graph models only) |" in text  # rep
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
    # and so does a new commit that changes no stage input: same experiments, same numbers
    (repo / "README.md").write_text("a README edit\n")
    _git(repo, "add", "README.md")
    _git(repo, "commit", "-qm", "README only")
    assert "4 experiments reused, 0 to run" in _tables(repo, "run", "tiny", "--seeds", "2").stdout
    assert (repo / "reports" / "tables" / "tiny.md").read_text() == text
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


def test_experiments_of_an_earlier_commit_hold_while_no_stage_input_changes(tmp_path, monkeypatch):

    monkeypatch.chdir(tmp_path)
    stages = {"stages": {"s": {"cmd": "python s.py", "deps": ["s.py", "data/x"]}}}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(stages))
    (tmp_path / "params.yaml").write_text("a: 1  # one\n")
    (tmp_path / "s.py").write_text("print(1)\n")
    _git(tmp_path, "init", "-q")
    commits = []

    def commit(path: str, text: str) -> str:
        (tmp_path / path).write_text(text)
        _git(tmp_path, "add", "-A")
        _git(tmp_path, "commit", "-qm", path)
        commits.append(_run(["git", "rev-parse", "HEAD"], tmp_path).stdout.strip())
        return commits[-1]

    base = commit("README.md", "first\n")
    assert inputs_unchanged(base, commit("README.md", "second\n"))
    assert inputs_unchanged(base, commit("params.yaml", "a: 1  # comment only\n"))
    assert not inputs_unchanged(base, commit("params.yaml", "a: 2\n"))
    before = commits[-1]
    assert not inputs_unchanged(before, commit("s.py", "print(2)\n"))  # only code changed
    assert not inputs_unchanged("0" * 40, base)  # a baseline that is not here
    # the key of the stage inputs: equal exactly where the inputs are
    assert inputs_key(commits[0]) == inputs_key(commits[1])
    assert inputs_key(commits[1]) != inputs_key(commits[3]) != inputs_key(commits[4])


def test_a_recommitted_output_of_a_stage_changes_no_input(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    stages = {
        "fetch": {"cmd": "f", "deps": ["f.py"], "always_changed": True, "outs": ["data.json"]},
        "eval": {
            "foreach": ["a", "b"],
            "do": {"cmd": "e ${item}", "deps": ["e.py"], "metrics": [{"m/${item}.json": {}}]},
        },
        "report": {"cmd": "r", "deps": ["r.py", "data.json", "m/a.json", "m/b.json"]},
    }
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
    for path in ("f.py", "e.py", "r.py", "data.json", "m/a.json", "m/b.json"):
        (tmp_path / path).parent.mkdir(exist_ok=True)
        (tmp_path / path).write_text("1\n")
    _git(tmp_path, "init", "-q")

    def commit(path: str) -> str:
        (tmp_path / path).write_text("2\n")
        _git(tmp_path, "commit", "-qam", path)
        return _run(["git", "rev-parse", "HEAD"], tmp_path).stdout.strip()

    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "base")
    base = _run(["git", "rev-parse", "HEAD"], tmp_path).stdout.strip()
    assert code_deps(base) == {"dvc.yaml", "f.py", "e.py", "r.py", "data.json"}
    assert inputs_unchanged(base, commit("m/b.json"))  # every experiment writes it again
    assert not inputs_unchanged(base, commit("data.json"))  # it records files outside git


def test_a_rendered_table_does_not_block_the_next_run_but_changed_code_does(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    stages = {"stages": {"s": {"cmd": "python s.py", "deps": ["s.py"]}}}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(stages))
    (tmp_path / "s.py").write_text("print(1)\n")
    index = tmp_path / "reports" / "tables" / "README.md"
    index.parent.mkdir(parents=True)
    index.write_text("# Ablation tables\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "rendered")
    index.write_text("# Ablation tables\n\n- [tiny](tiny.md): Tiny\n")  # a render
    require_clean_head()
    (tmp_path / "s.py").write_text("print(2)\n")
    with pytest.raises(PipelineError, match=r"uncommitted changes.*\ns.py$") as err:
        require_clean_head()
    assert "README.md" not in str(err.value)
