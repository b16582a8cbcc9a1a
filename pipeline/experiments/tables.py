"""The papers' tables in one command: DVC experiments over seeds, rendered with CIs.

``python -m pipeline.experiments.tables run dpnet-t2 tlr-t3`` (or ``run all``) queues every row of
the
named tables (``ablations.yaml``) for every seed as a DVC experiment from the clean, committed
``HEAD``, reuses the experiments that already hold at ``HEAD`` (based on it, or on an
earlier commit with the same stage inputs:
:func:`pipeline.experiments.reuse.reusable_experiments`), runs the queue with
``--jobs`` workers while showing progress, and renders ``reports/tables/<id>.md`` and
``<id>.png`` plus the index ``reports/tables/README.md``. ``render`` renders from the
experiments already there (local, or brought by ``dvc exp pull``) without running anything.

A cell shows our mean over the seeds with its 95 % CI (videos and seeds resampled,
:func:`pipeline.evaluation.stats.seed_summary`), the paper's number, and the difference to the
table's
reference row with its paired 95 % CI (:func:`pipeline.evaluation.stats.paired_difference`). Under
each
table, each adjacent pair of rows is judged: does our paired CI of their difference agree
with the paper's direction, contradict it, or not tell (:func:`order_pairs`)? A table whose
paper prints C-AVE numbers shows them, with our cells "not computed" unless the runs were
scored on the corrected labels (``data.right_labels``).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterable, Set
from decimal import Decimal
from pathlib import Path

import numpy as np
import yaml
from tqdm import tqdm

from pipeline.avvp import metrics as avvp_metrics
from pipeline.errors import PipelineError, run_stage
from pipeline.evaluation.stats import ZERO_DIVISION, paired_difference, seed_summary
from pipeline.experiments.ablations import (
    Cell,
    Experiment,
    Table,
    is_served,
    load_ablations,
    plan,
)
from pipeline.experiments.cluster import EXECUTORS, on_cluster
from pipeline.experiments.reuse import (
    TABLES_DIR,
    git,
    head,
    require_clean_head,
    reusable_experiments,
    served_by,
)
from pipeline.io import atomic_path

LABEL_SETS = {"o_ave": "labels", "c_ave": "right_labels"}
TITLES = {
    "accuracy": "Accuracy",
    "weighted_f1": "Wt. F1",
    "non_ave_f1": "Non-AVE F1",
    "non_ave_recall": "Non-AVE R",
    "non_ave_precision": "Non-AVE P",
    "ave_f1": "AVE F1",
    "ave_recall": "AVE R",
    "ave_precision": "AVE P",
    **avvp_metrics.TITLES,  # the AVVP task's columns, named once in pipeline.avvp.metrics
}


ZERO_DIVISION_NOTE = (
    f"Every seed counts in every mean and CI: a recall, precision or F1 whose denominator "
    f"is zero (e.g. the non-AVE F1 of a seed that never predicts background) counts as "
    f"{100 * ZERO_DIVISION:g} (scikit-learn's `zero_division={ZERO_DIVISION:g}`), where one "
    f"run's own metrics show it as undefined."
)


def is_avvp(cell: Cell) -> bool:
    """Whether a cell's numbers come from the AVVP task (LLP) rather than AVEL."""
    return cell.result.startswith("avvp_")


def _dvc(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "dvc", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise PipelineError(f"dvc {' '.join(args)}: {(result.stderr or result.stdout).strip()}")
    return result.stdout


def start_detached(command: list[str]) -> str:
    """Run a command that leaves a background process behind; its output once it returns.

    ``dvc queue start`` starts its workers in the background and returns, but the workers
    inherit its standard output and error: reading them through pipes would wait until the
    whole queue is done. The output goes through a file instead.
    """
    with tempfile.TemporaryFile(mode="w+") as out:
        result = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        out.seek(0)
        text = out.read()
    if result.returncode != 0:
        raise PipelineError(f"{' '.join(command)}: {text.strip()}")
    return text


_WORKERS = re.compile(r"Worker status: (\d+) active, (\d+) idle")


def _queue_status() -> tuple[dict[str, tuple[str, str]], int]:
    """From ``dvc queue status``: task id -> (experiment name, status: Queued, Running,
    Success, Failed), and the number of live workers (active and idle).

    Keyed by task, not by name: an experiment run again keeps its name, and the queue still
    lists its earlier task (a run stopped by hand stays ``Failed``) beside the new one.
    """
    text = _dvc("queue", "status")
    tasks = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 3 and words[-1] in {"Queued", "Running", "Success", "Failed"}:
            tasks[words[0]] = (words[1], words[-1])
    workers = _WORKERS.search(text)
    return tasks, int(workers[1]) + int(workers[2]) if workers else 0


def _finished(tasks: dict[str, tuple[str, str]]) -> set[str]:
    """The ids of the tasks that have ended (Success or Failed)."""
    return {task for task, (_, state) in tasks.items() if state in {"Success", "Failed"}}


def _outcomes(tasks: dict[str, tuple[str, str]], earlier: Set[str]) -> dict[str, str]:
    """Experiment name -> its state over the tasks not in ``earlier``: Queued or Running
    while any of its tasks is, else Success if one succeeded, else Failed."""
    rank = {"Failed": 0, "Success": 1, "Queued": 2, "Running": 3}
    outcome: dict[str, str] = {}
    for task, (name, state) in tasks.items():
        if task not in earlier and rank[state] > rank.get(outcome.get(name, ""), -1):
            outcome[name] = state
    return outcome


def _alive(tasks: dict[str, tuple[str, str]], workers: int) -> int:
    """The queue workers known to be alive: those ``dvc queue status`` lists, and at least
    one per running task. A loaded machine can make celery's ping time out, and the status
    then lists no worker while every worker runs a task (it happened here: ``dvc queue
    start`` then started two more of the same names)."""
    running = sum(state == "Running" for _, state in tasks.values())
    return max(workers, running)


def _start_workers(jobs: int) -> None:
    """``dvc queue start -j jobs``: DVC starts the workers missing up to ``jobs``."""
    start_detached([sys.executable, "-m", "dvc", "queue", "start", "-j", str(jobs)])


def wait_for_queue(
    names: set[str],
    jobs: int,
    poll: float = 5.0,
    earlier: Set[str] = frozenset(),
    grace: float = 60.0,
) -> dict[str, str]:
    """Wait, with progress, until each experiment of ``names`` has succeeded or failed.

    Only the queue's tasks that are not in ``earlier`` count: a task that had ended before
    this run queued its own (the same name, run earlier) says nothing about this run.

    A DVC queue worker can stop while tasks are still queued (treeverse/dvc#10562), and
    with no worker left the queue would wait forever. So when the queue has our tasks
    queued but fewer than ``jobs`` workers at two polls in a row, ``grace`` seconds or more
    after the workers were last started (a worker just started is not yet listed, and
    ``dvc queue start`` starts duplicates), the missing workers are started again.

    Args:
        names: the experiments to wait for.
        jobs: the number of queue workers to keep.
        poll: seconds between two reads of ``dvc queue status``.
        earlier: ids of the tasks that had ended before these were queued.
        grace: seconds after a start before missing workers are started again.

    Returns:
        Name -> ``"Success"`` or ``"Failed"``.
    """
    finished: dict[str, str] = {}
    short, started = 0, time.monotonic()
    with tqdm(total=len(names), desc="experiments", unit="exp") as bar:
        while len(finished) < len(names):
            time.sleep(poll)
            tasks, workers = _queue_status()
            outcomes = _outcomes(tasks, earlier)
            for name in names - set(finished):
                if outcomes.get(name) in {"Success", "Failed"}:
                    finished[name] = outcomes[name]
                    bar.update(1)
            queued = any(outcomes.get(name) == "Queued" for name in names)
            alive = _alive(tasks, workers)
            short = short + 1 if queued and alive < jobs else 0
            if short >= 2 and time.monotonic() - started >= grace:
                print(f"tables: {alive} of {jobs} queue workers left, starting the others")
                _start_workers(jobs)
                short, started = 0, time.monotonic()
    return finished


def run_experiments(
    experiments: Iterable[Experiment],
    jobs: int = 1,
    poll: float = 5.0,
    alternatives: dict[str, tuple[Experiment, ...]] | None = None,
) -> dict:
    """Queue the experiments that ``HEAD`` lacks, run the queue, wait with progress.

    An experiment already queued or running in DVC's queue (by another tables command
    started before this one finished) is waited for, not queued a second time. A task of
    the same name that had ended before (an earlier run, stopped or done) is ignored.

    Args:
        alternatives: experiment name -> experiments that serve all its cells as well
            (:attr:`Cell.alternatives`); one of them at ``HEAD`` counts as reuse.

    Returns:
        Name -> ``"reused"``, ``"Success"`` or ``"Failed"``.
    """
    require_clean_head()
    baseline = head()
    done = reusable_experiments(baseline)
    alternatives = alternatives or {}
    status = {}
    missing = []
    for experiment in experiments:
        if is_served(experiment, alternatives, done):
            status[experiment.name] = "reused"
        elif experiment.name not in status:
            missing.append(experiment)
            status[experiment.name] = "Queued"
    print(f"tables: {len(status) - len(missing)} experiments reused, {len(missing)} to run")
    if not missing:
        return status
    tasks, _ = _queue_status()
    earlier = _finished(tasks)
    pending = set(_outcomes(tasks, earlier))  # names with a task queued or running
    for experiment in missing:
        if experiment.name not in pending:
            _dvc(*experiment.command())
    _start_workers(jobs)
    finished = wait_for_queue({e.name for e in missing}, jobs, poll, earlier)
    status.update(finished)
    failed = sorted(name for name, state in finished.items() if state == "Failed")
    if failed:
        print(f"tables: failed experiments (see `dvc queue logs NAME`): {', '.join(failed)}")
    return status


def _read_json(commit: str, path: str) -> dict:
    return json.loads(git("show", f"{commit}:{path}"))


class Runs:
    """The per-video predictions of experiments, read from their commits (cached)."""

    def __init__(self, baseline: str) -> None:
        self.commits = reusable_experiments(baseline)
        self._cache: dict[tuple[str, str], dict] = {}

    def commit(self, cell: Cell) -> str | None:
        """The commit of the cell's experiment, or of the first alternative that exists."""
        found = (self.commits.get(e.name) for e in cell.candidates())
        return next((commit for commit in found if commit is not None), None)

    def predictions(self, cell: Cell) -> dict | None:
        commit = self.commit(cell)
        if commit is None:
            return None
        key = (commit, cell.result)
        if key not in self._cache:
            path = f"reports/predictions/{cell.result}.json"
            self._cache[key] = _read_json(commit, path)
        return self._cache[key]

    def params(self, cell: Cell) -> dict | None:
        """The ``params.yaml`` the cell's experiment ran with, or ``None`` if it has none."""
        commit = self.commit(cell)
        return None if commit is None else yaml.safe_load(git("show", f"{commit}:params.yaml"))

    def data_source(self, cell: Cell) -> str | None:
        commit = self.commit(cell)
        manifest = "metrics/avvp/download.json" if is_avvp(cell) else "metrics/download.json"
        return None if commit is None else _read_json(commit, manifest)["source"]


def _avvp_row_runs(
    table: Table, row: str, seeds: list[int], cells: dict, runs: Runs
) -> list[dict[str, np.ndarray]] | None:
    """Each seed's per-video AVVP scores of ``row``, or ``None`` if incomplete."""
    outputs, names = [], None
    for seed in seeds:
        cell = cells[(table.id, row, seed)]
        saved = runs.predictions(cell)
        if saved is None or cell.output not in saved:
            return None
        if names is not None and saved["names"] != names:
            raise PipelineError(f"table {table.id} row {row}: seeds were scored on other videos")
        names = saved["names"]
        outputs.append({k: np.asarray(v) for k, v in saved[cell.output].items()})
    return outputs


def avvp_table_numbers(table: Table, seeds: list[int], cells: dict, runs: Runs) -> dict:
    """:func:`table_numbers` of an AVVP table, from per-video scores (each seed's under
    ``avvp_runs``)."""
    reference = _avvp_row_runs(table, table.reference, seeds, cells, runs)
    numbers = {}
    for row in table.rows:
        found = _avvp_row_runs(table, row.name, seeds, cells, runs) if row.runnable else None
        if found is None:
            numbers[row.name] = None
            continue
        summary = avvp_metrics.seed_summary(found, table.metrics)
        diff = None
        if reference is not None and row.name != table.reference:
            diff = avvp_metrics.paired_difference(found, reference, table.metrics)
        numbers[row.name] = {"summary": summary, "diff": diff, "avvp_runs": found}
    return numbers


def _row_runs(
    table: Table, row: str, seeds: list[int], cells: dict, runs: Runs, labels_key: str
) -> tuple[np.ndarray, list[np.ndarray]] | None:
    """The test labels and each seed's predictions of ``row``, or ``None`` if incomplete."""
    outputs = []
    labels = None
    for seed in seeds:
        cell = cells[(table.id, row, seed)]
        saved = runs.predictions(cell)
        if saved is None or labels_key not in saved or cell.output not in saved:
            return None
        found = np.asarray(saved[labels_key])
        if labels is not None and not np.array_equal(found, labels):
            raise PipelineError(f"table {table.id} row {row}: seeds were scored on other labels")
        labels = found
        outputs.append(np.asarray(saved[cell.output]))
    return labels, outputs


def _pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}"


def _paper(value: Decimal | None) -> str:
    """The paper's number as printed (``77.50``), ``–`` where it prints none."""
    return "–" if value is None else str(value)


def table_numbers(table: Table, seeds: list[int], cells: dict, runs: Runs, label_set: str) -> dict:
    """Per row: the seed summary and paired difference of each metric (``None`` if not run),
    and the test labels and each seed's predictions (``runs``) for further comparisons."""
    first = next(cells[(table.id, r.name, seeds[0])] for r in table.rows if r.runnable)
    if is_avvp(first):
        return avvp_table_numbers(table, seeds, cells, runs)
    labels_key = LABEL_SETS[label_set]
    reference = _row_runs(table, table.reference, seeds, cells, runs, labels_key)
    numbers = {}
    for row in table.rows:
        found = None
        if row.runnable:
            found = _row_runs(table, row.name, seeds, cells, runs, labels_key)
        if found is None:
            numbers[row.name] = None
            continue
        labels, outputs = found
        summary = seed_summary(labels, outputs, table.metrics)
        diff = None
        if reference is not None and row.name != table.reference:
            diff = paired_difference(labels, outputs, reference[1], table.metrics)
        numbers[row.name] = {"summary": summary, "diff": diff, "runs": found}
    return numbers


def _cell_text(numbers: dict | None, metric: str, paper: Decimal | None) -> str:
    if numbers is None:
        return f"paper {_paper(paper)}"
    s = numbers["summary"][metric]
    text = f"**{_pct(s['mean'])}** [{_pct(s['ci_low'])}, {_pct(s['ci_high'])}]"
    text += f"<br>paper {_paper(paper)}"
    d = (numbers["diff"] or {}).get(metric)
    if d is not None:
        low, high = _pct(d["ci_low"], True), _pct(d["ci_high"], True)
        text += f"<br>Δ {_pct(d['diff'], True)} [{low}, {high}]"
    return text


def verdict(paper_difference: Decimal, ci_low: float | None, ci_high: float | None) -> str:
    """Whether our paired CI of ``b - a`` agrees with the paper's sign of ``b - a``.

    ``agrees``: the CI excludes 0 on the paper's side; ``contradicts``: it excludes 0 on the
    other side (or the paper prints a tie); ``cannot tell``: it contains 0.
    """
    if ci_low is None or ci_high is None or ci_low <= 0 <= ci_high:
        return "cannot tell"
    ours = 1 if ci_low > 0 else -1
    paper = (paper_difference > 0) - (paper_difference < 0)
    return "agrees" if ours == paper else "contradicts"


def order_pairs(table: Table, numbers: dict, label_set: str) -> list[dict]:
    """Each adjacent pair ``(a, b)`` of the rows that have our runs and a paper number, in
    the table's order, with per metric the paper's ``b - a``, our paired difference and CI
    (:func:`pipeline.evaluation.stats.paired_difference`, seed ``i`` with seed ``i``) and the
    :func:`verdict` (``None`` where the paper prints no number for ``a`` or ``b``)."""
    rows = [
        row
        for row in table.rows
        if numbers.get(row.name) is not None and any(_paper_numbers(row, label_set).values())
    ]
    pairs = []
    for a, b in zip(rows, rows[1:], strict=False):
        ours = _paired(numbers[b.name], numbers[a.name], table.metrics)
        paper_a, paper_b = _paper_numbers(a, label_set), _paper_numbers(b, label_set)
        per_metric = {}
        for metric in table.metrics:
            if paper_a.get(metric) is None or paper_b.get(metric) is None:
                per_metric[metric] = None
                continue
            paper = paper_b[metric] - paper_a[metric]
            d = ours[metric]
            per_metric[metric] = {
                "paper": paper,
                **d,
                "verdict": verdict(paper, d["ci_low"], d["ci_high"]),
            }
        pairs.append({"a": a.name, "b": b.name, "metrics": per_metric})
    return pairs


def _paired(row: dict, upper: dict, metrics: list[str]) -> dict:
    """Our paired difference ``row - upper`` per metric, AVEL's or AVVP's."""
    if "avvp_runs" in row:
        return avvp_metrics.paired_difference(row["avvp_runs"], upper["avvp_runs"], metrics)
    labels, runs = row["runs"]
    return paired_difference(labels, runs, upper["runs"][1], metrics)


def _paper_numbers(row, label_set: str) -> dict:
    return getattr(row.paper, label_set) or {}


def order_lines(table: Table, numbers: dict, label_set: str) -> list[str]:
    """Markdown: the paper's order of each adjacent pair of rows judged by our paired CI."""
    pairs = order_pairs(table, numbers, label_set)
    if not pairs:
        return ["Order of the rows: fewer than two rows with both the paper's and our numbers."]
    lines = [
        "Order of adjacent rows: the paper's difference (lower row minus upper row) and ours "
        "with its paired 95 % CI; **agrees** / **contradicts** when our CI excludes 0 on the "
        "paper's side / on the other side, **cannot tell** when it contains 0.",
        "",
        "| Pair | " + " | ".join(TITLES[m] for m in table.metrics) + " |",
        "|---|" + "---|" * len(table.metrics),
    ]
    counts = dict.fromkeys(("agrees", "contradicts", "cannot tell"), 0)
    for pair in pairs:
        cells = []
        for metric in table.metrics:
            p = pair["metrics"][metric]
            if p is None:
                cells.append("–")
                continue
            counts[p["verdict"]] += 1
            ci = f"[{_pct(p['ci_low'], True)}, {_pct(p['ci_high'], True)}]"
            cells.append(
                f"paper {p['paper']:+}<br>ours {_pct(p['diff'], True)} {ci}<br>**{p['verdict']}**"
            )
        lines.append(f"| `{pair['a']}` → `{pair['b']}` | " + " | ".join(cells) + " |")
    total = ", ".join(f"{n} {name}" for name, n in counts.items())
    return [*lines, "", f"Pairs × metrics: {total}."]


NOT_COMPUTED = (
    "Our scores on the corrected labels are **not computed**: `data.right_labels` is unset, "
    "so the runs were scored on the original labels only (set it to the PSP release's "
    "`right_labels.h5`); the paper's C-AVE numbers are shown alone."
)


def _schedule(train: dict) -> str:
    """``train.scheduler`` and the keys it reads, in words."""
    name = train.get("scheduler", "step")
    if name == "cosine_restarts":
        return (
            f"cosine restarts every {train['step_size']} epochs, floors {train['floors']} "
            f"ending at epochs {train['milestones']}"
        )
    if name == "step":
        return f"step decay x{train['gamma']} every {train['step_size']} epochs"
    if name == "multistep":
        return f"decay x{train['gamma']} at epochs {train['milestones']}"
    return name


def regime(params: dict, result: str, avvp: bool) -> str:
    """How a row was trained, read from its run's ``params.yaml``: epochs, schedule,
    optimizer, batch, and the augmentation or retraining its result went through.

    Args:
        params: the run's ``params.yaml``.
        result: the row's result (``sel``, ``wsel``, ``wsel_refined``; AVVP: ``han``, ...).
        avvp: whether the row is an AVVP row (trained by ``avvp.train``).
    """
    if avvp:
        train = params["avvp"]["train"]
        refine = params["avvp"]["refine"]
        words = [
            f"{params['avvp']['model']['name']}, {train['epochs']} epochs",
            f"{train['optimizer']} lr {train['lr']}, batch {train['batch_size']}",
            f"step decay x{train['gamma']} every {train['step_size']} epochs",
        ]
        if refine.get("auxiliary"):
            words.append("Step 1 with the auxiliary objective")
        return "; ".join(words)
    train, model, augment = params["train"], params["model"], params["augment"]
    words = [
        f"{model['name']}, {train['epochs']} epochs",
        f"{train['optimizer']} lr {train['lr']}, batch {train['batch_size']}",
        _schedule(train),
    ]
    if result == "sel":
        words.append(
            f"Replicate {'on' if augment['replicate'] else 'off'}, "
            f"Link {'on' if augment['link'] else 'off'} (graph models only)"
        )
        if augment.get("smb_per_class"):
            words.append(f"SMB {augment['smb_per_class']} fused videos per class")
    else:
        refine = params["refine"]
        step1 = "with" if refine["auxiliary"] else "without"
        words.append(f"Step 1 {step1} the auxiliary objective")
        if result == "wsel_refined":
            words.append(
                f"retrained {refine['retrain_epochs']} epochs on {refine['labels']} labels "
                f"(N {refine['window']}, s {refine['stride']}, tau {refine['tau']})"
            )
    return "; ".join(words)


def regime_lines(table: Table, seed: int, cells: dict, runs: Runs) -> list[str]:
    """The regime of every row that ran (:func:`regime`), from its ``seed`` run."""
    lines = [
        f"Regime of each row, read from the `params.yaml` of its seed-{seed} run:",
        "",
        "| Row | Regime |",
        "|---|---|",
    ]
    for row in table.rows:
        cell = cells.get((table.id, row.name, seed)) if row.runnable else None
        params = None if cell is None else runs.params(cell)
        if params is not None:
            lines.append(f"| `{row.name}` | {regime(params, cell.result, is_avvp(cell))} |")
    return [*lines, ""]


def _label_set_lines(table: Table, label_set: str, sets: dict | None, avvp: bool) -> list[str]:
    """The section of one label set; ``sets`` is ``None`` where it was not computed."""
    title = "original labels (O-AVE)" if label_set == "o_ave" else "corrected labels (C-AVE)"
    title = "LLP test videos" if avvp else title
    lines = [f"## {title}", ""]
    if sets is None:
        lines += [NOT_COMPUTED, ""]
    lines += [
        "Each cell: **our mean** [95 % CI over test videos and seeds], the paper's number as "
        "printed, and Δ to the reference row [paired 95 % CI]; percent.",
        "",
        *([] if avvp else [ZERO_DIVISION_NOTE, ""]),  # AVEL's F1s; AVVP's are per video
        "| Row | " + " | ".join(TITLES[m] for m in table.metrics) + " |",
        "|---|" + "---|" * len(table.metrics),
    ]
    for row in table.rows:
        paper = _paper_numbers(row, label_set)
        name = f"{row.label} (`{row.name}`)"
        if not row.runnable:
            name += f"<br>not run: {row.not_run}"
        elif sets is not None and sets.get(row.name) is None:
            name += "<br>missing: no finished experiment"
        if sets is None:
            cells = [f"not computed<br>paper {_paper(paper.get(m))}" for m in table.metrics]
        else:
            cells = [_cell_text(sets.get(row.name), m, paper.get(m)) for m in table.metrics]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    if sets is not None:
        lines += [*order_lines(table, sets, label_set), ""]
    return lines


SYNTHETIC_FINDINGS = (
    "What the committed render of this table shows, and the reason for each contradiction "
    "with the paper where one is established: `docs/tables.md`."
)


def render_markdown(
    table: Table,
    seeds: list[int],
    numbers: dict,
    source: str | None,
    avvp: bool = False,
    regimes: list[str] | None = None,
) -> str:
    """The markdown of one table: one section per label set of ``numbers`` (``o_ave``, and
    ``c_ave`` either computed or ``None``, shown as not computed), after the note and the
    rows' regimes (:func:`regime_lines`)."""
    lines = [
        f"# {table.caption}",
        "",
        f"Seed `{table.seed}`, {table.ref}. Reference row: `{table.reference}`. "
        f"{len(seeds)} seeds (`train.seed` = {', '.join(map(str, seeds))}).",
        "",
    ]
    dataset = "LLP" if avvp else "AVE"
    if source == "synthetic":
        lines += [
            "Computed on the embedded **synthetic** data: evidence that the machinery works, "
            f"not evidence about the methods. The paper's numbers are on real {dataset}.",
            "",
            SYNTHETIC_FINDINGS,
            "",
        ]
    if table.note:
        lines += [f"Note: {table.note}", "", ""]
    lines += regimes or []
    for label_set, sets in numbers.items():
        lines += _label_set_lines(table, label_set, sets, avvp)
    return "\n".join(lines)


def plot_table(table: Table, numbers: dict, path: Path) -> None:
    """Bars of our mean with 95 % CI error bars, the paper's numbers as markers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = table.metrics[0]
    rows = [row for row in table.rows if numbers.get(row.name)]
    means = [100 * (numbers[r.name]["summary"][metric]["mean"] or np.nan) for r in rows]
    lows = [100 * (numbers[r.name]["summary"][metric]["ci_low"] or np.nan) for r in rows]
    highs = [100 * (numbers[r.name]["summary"][metric]["ci_high"] or np.nan) for r in rows]
    paper = [row.paper.o_ave.get(metric) for row in rows]
    paper = [None if p is None else float(p) for p in paper]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(4, 0.9 * len(rows) + 2) + 1.5, 4))
    errors = [np.subtract(means, lows), np.subtract(highs, means)]
    ax.bar(x, means, yerr=errors, capsize=4, color="#4c72b0", label="ours (95 % CI)")
    marks = [(i, p) for i, p in enumerate(paper) if p is not None]
    if marks:
        ax.scatter(*zip(*marks, strict=True), color="#dd8452", zorder=3, label="paper")
    ax.set_xticks(x, [row.name for row in rows], rotation=30, ha="right")
    ax.set_ylabel(f"{TITLES[metric]} (%)")
    ax.set_title(textwrap.fill(f"{table.caption} ({table.ref})", 45), fontsize=9)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # clear of the bars
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def render(
    tables: list[Table],
    seeds: list[int],
    out_dir: Path = TABLES_DIR,
    every_table: list[Table] | None = None,
) -> list[Path]:
    """Render each table from the experiments that hold at ``HEAD``
    (:func:`pipeline.experiments.reuse.reusable_experiments`; a cell also from its
    alternatives, found among ``every_table``: :func:`pipeline.experiments.ablations.plan`),
    and the index page."""
    cells = plan(tables, seeds, every_table)
    runs = Runs(head())
    written = []
    for table in tables:
        numbers = {"o_ave": table_numbers(table, seeds, cells, runs, "o_ave")}
        first = next(iter(cells[(table.id, r.name, seeds[0])] for r in table.rows if r.runnable))
        if _has_right_labels(runs, first):
            numbers["c_ave"] = table_numbers(table, seeds, cells, runs, "c_ave")
        elif any(row.paper.c_ave for row in table.rows):
            numbers["c_ave"] = None  # the paper has a C-AVE column; we have no scores
        regimes = regime_lines(table, seeds[0], cells, runs)
        source, avvp = runs.data_source(first), is_avvp(first)
        text = render_markdown(table, seeds, numbers, source, avvp, regimes)
        path = out_dir / f"{table.id}.md"
        with atomic_path(path) as tmp:
            tmp.write_text(text)
        if any(numbers["o_ave"].values()):
            plot_table(table, numbers["o_ave"], out_dir / f"{table.id}.png")
        written.append(path)
    _write_index(out_dir)
    return written


def _has_right_labels(runs: Runs, cell: Cell) -> bool:
    if is_avvp(cell):
        return False
    saved = runs.predictions(cell)
    return saved is not None and "right_labels" in saved


def _write_index(out_dir: Path) -> None:
    """``README.md`` of the tables folder: one line per rendered table."""
    lines = ["# Ablation tables", "", "Rendered by `python -m pipeline.experiments.tables`.", ""]
    for path in sorted(out_dir.glob("*.md")):
        if path.name == "README.md":
            continue
        caption = path.read_text().splitlines()[0].removeprefix("# ")
        lines.append(f"- [{path.stem}]({path.name}): {caption}")
    with atomic_path(out_dir / "README.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def build_site(tables_file: str, seeds: int) -> None:
    """``python -m pipeline.site build`` with this command's table definitions and seeds.

    The site reads the tables' results (it imports this module); this command runs it as a
    command instead of importing it, so that the import graph has no circle.
    """
    package_root = str(Path(__file__).resolve().parents[2])  # the same pipeline package
    path = [package_root, *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    command = ["build", "--tables-file", tables_file, "--seeds", str(seeds)]
    if subprocess.run([sys.executable, "-m", "pipeline.site", *command], env=env).returncode:
        raise PipelineError("tables: building the site failed (its error is above)")


def _selected(ids: list[str], definitions) -> list[Table]:
    return definitions.select(ids)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.experiments.tables", description=__doc__
    )
    parser.add_argument("command", choices=["run", "render", "list"])
    parser.add_argument("tables", nargs="*", default=["all"], help="table ids, or all")
    parser.add_argument("--seeds", type=int, default=3, help="train.seed = 0..N-1 (default 3)")
    parser.add_argument(
        "--jobs", type=int, default=1, help="parallel queue workers or local jobs (default 1)"
    )
    parser.add_argument("--file", default="ablations.yaml", help="table definitions")
    parser.add_argument("--site", action="store_true", help="then build reports/site/")
    parser.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="dvc-queue",
        help="dvc-queue (default): DVC's local queue; slurm: one SLURM job array; local: "
        "the same jobs as processes here (both through submitit, see "
        "pipeline/experiments/cluster.py)",
    )
    parser.add_argument("--cluster", default="cluster.yaml", help="options of slurm / local")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.jobs < 1:
        raise PipelineError("--seeds and --jobs: expected integers >= 1")
    definitions = load_ablations(args.file)
    tables = _selected(args.tables or ["all"], definitions)
    if args.command == "list":
        for table in tables:
            runnable = sum(row.runnable for row in table.rows)
            print(f"{table.id}: {table.caption} ({table.ref}; {runnable}/{len(table.rows)} rows)")
        return
    seeds = list(range(args.seeds))
    failed = []
    if args.executor != "dvc-queue":
        failed = on_cluster(
            args.command, tables, seeds, args.executor, args.cluster, args.jobs, definitions.tables
        )
    elif args.command == "run":
        cells = plan(tables, seeds, definitions.tables).values()
        experiments = {cell.experiment for cell in cells}
        run_experiments(
            sorted(experiments, key=lambda e: e.name), args.jobs, alternatives=served_by(cells)
        )
    for path in render(tables, seeds, every_table=definitions.tables):
        print(f"tables: wrote {path}")
    if args.site:
        build_site(args.file, args.seeds)
    if failed:
        raise PipelineError(
            f"{len(failed)} jobs failed (listed above with their logs); the same command "
            "resubmits only the experiments missing at the remote"
        )


if __name__ == "__main__":
    run_stage(lambda: main(sys.argv[1:]))
