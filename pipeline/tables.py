"""The papers' tables in one command: DVC experiments over seeds, rendered with CIs.

``python -m pipeline.tables run dpnet-t2 tlr-t3`` (or ``run all``) queues every row of the
named tables (``ablations.yaml``) for every seed as a DVC experiment from the clean, committed
``HEAD``, reuses the experiments of ``HEAD`` that already exist, runs the queue with
``--jobs`` workers while showing progress, and renders ``reports/tables/<id>.md`` and
``<id>.png`` plus the index ``reports/tables/README.md``. ``render`` renders from the
experiments already there (local, or brought by ``dvc exp pull``) without running anything.

A cell shows our mean over the seeds with its 95 % CI (videos and seeds resampled,
:func:`pipeline.stats.seed_summary`), the paper's number, and the difference to the table's
reference row with its paired 95 % CI (:func:`pipeline.stats.paired_difference`); a line
under each table says whether the paper's order of the rows is reproduced.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau
from tqdm import tqdm

from pipeline.ablations import Cell, Experiment, Table, load_ablations, plan
from pipeline.avvp import metrics as avvp_metrics
from pipeline.errors import PipelineError, run_stage
from pipeline.io import atomic_path
from pipeline.stats import paired_difference, seed_summary

TABLES_DIR = Path("reports") / "tables"
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
    "audio_segment": "Audio Seg.",
    "audio_event": "Audio Event",
    "visual_segment": "Visual Seg.",
    "visual_event": "Visual Event",
    "av_segment": "AV Seg.",
    "av_event": "AV Event",
    "type_segment": "Type@AV Seg.",
    "type_event": "Type@AV Event",
    "event_segment": "Event@AV Seg.",
    "event_event": "Event@AV Event",
}


def is_avvp(cell: Cell) -> bool:
    """Whether a cell's numbers come from the AVVP task (LLP) rather than AVEL."""
    return cell.result.startswith("avvp_")


def _git(*args: str) -> str:
    result = subprocess.run(["git", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise PipelineError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


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


def head() -> str:
    """The commit experiments are based on."""
    return _git("rev-parse", "HEAD").strip()


def _refs_prefix(baseline: str) -> str:
    return f"refs/exps/{baseline[:2]}/{baseline[2:]}/"


def existing_experiments(baseline: str) -> dict[str, str]:
    """Name -> commit of every experiment based on ``baseline`` (local or pulled)."""
    prefix = _refs_prefix(baseline)
    lines = _git("for-each-ref", "--format=%(refname) %(objectname)", prefix).splitlines()
    return {ref.removeprefix(prefix): sha for ref, sha in (line.split() for line in lines)}


def _require_clean_head() -> None:
    changed = _git("status", "--porcelain", "--untracked-files=no").strip()
    if changed:
        raise PipelineError(
            "the workspace has uncommitted changes: experiments are queued from a clean HEAD "
            f"(commit or stash first):\n{changed}"
        )


def _queue_states() -> dict[str, str]:
    """Experiment name -> status (Queued, Running, Success, Failed) from ``dvc queue status``."""
    states = {}
    for line in _dvc("queue", "status").splitlines():
        words = line.split()
        if len(words) >= 3 and words[-1] in {"Queued", "Running", "Success", "Failed"}:
            states[words[1]] = words[-1]
    return states


def run_experiments(experiments: Iterable[Experiment], jobs: int = 1, poll: float = 5.0) -> dict:
    """Queue the experiments that ``HEAD`` lacks, run the queue, wait with progress.

    Returns:
        Name -> ``"reused"``, ``"Success"`` or ``"Failed"``.
    """
    _require_clean_head()
    baseline = head()
    done = existing_experiments(baseline)
    status = {}
    missing = []
    for experiment in experiments:
        if experiment.name in done:
            status[experiment.name] = "reused"
        elif experiment.name not in status:
            missing.append(experiment)
            status[experiment.name] = "Queued"
    print(f"tables: {len(status) - len(missing)} experiments reused, {len(missing)} to run")
    if not missing:
        return status
    for experiment in missing:
        _dvc(*experiment.command())
    start_detached([sys.executable, "-m", "dvc", "queue", "start", "-j", str(jobs)])
    names = {e.name for e in missing}
    with tqdm(total=len(names), desc="experiments", unit="exp") as bar:
        finished: dict[str, str] = {}
        while len(finished) < len(names):
            time.sleep(poll)
            states = _queue_states()
            for name in names - set(finished):
                if states.get(name) in {"Success", "Failed"}:
                    finished[name] = states[name]
                    bar.update(1)
    status.update(finished)
    failed = sorted(name for name, state in finished.items() if state == "Failed")
    if failed:
        print(f"tables: failed experiments (see `dvc queue logs NAME`): {', '.join(failed)}")
    return status


def _read_json(commit: str, path: str) -> dict:
    return json.loads(_git("show", f"{commit}:{path}"))


class Runs:
    """The per-video predictions of experiments, read from their commits (cached)."""

    def __init__(self, baseline: str) -> None:
        self.commits = existing_experiments(baseline)
        self._cache: dict[tuple[str, str], dict] = {}

    def predictions(self, cell: Cell) -> dict | None:
        commit = self.commits.get(cell.experiment.name)
        if commit is None:
            return None
        key = (commit, cell.result)
        if key not in self._cache:
            path = f"reports/predictions/{cell.result}.json"
            self._cache[key] = _read_json(commit, path)
        return self._cache[key]

    def data_source(self, cell: Cell) -> str | None:
        commit = self.commits.get(cell.experiment.name)
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
    """:func:`table_numbers` of an AVVP table, from per-video scores."""
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
        numbers[row.name] = {"summary": summary, "diff": diff}
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


def _paper(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def table_numbers(table: Table, seeds: list[int], cells: dict, runs: Runs, label_set: str) -> dict:
    """Per row: the seed summary and paired difference of each metric (``None`` if not run)."""
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
        numbers[row.name] = {"summary": summary, "diff": diff}
    return numbers


def _cell_text(numbers: dict | None, metric: str, paper: float | None) -> str:
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


def order_line(table: Table, numbers: dict, label_set: str, metric: str) -> str:
    """Whether the paper's order of the rows by ``metric`` is reproduced (Kendall's tau)."""
    pairs = []
    for row in table.rows:
        paper = getattr(row.paper, label_set) or {}
        ours = numbers.get(row.name)
        if paper.get(metric) is not None and ours is not None:
            mean = ours["summary"][metric]["mean"]
            if mean is not None:
                pairs.append((paper[metric], mean, row.name))
    if len(pairs) < 2:
        return f"Paper's order by {TITLES[metric]}: fewer than two rows with both numbers."
    paper_order = [name for *_, name in sorted(pairs, key=lambda p: p[0])]
    ours_order = [name for *_, name in sorted(pairs, key=lambda p: p[1])]
    tau = kendalltau([p[0] for p in pairs], [p[1] for p in pairs]).statistic
    verdict = "reproduced" if paper_order == ours_order else "not reproduced"
    return (
        f"Paper's order of the rows by {TITLES[metric]} (lowest first: "
        f"{' < '.join(paper_order)}): **{verdict}** (ours: {' < '.join(ours_order)}; "
        f"Kendall's τ = {tau:.2f} over {len(pairs)} rows)."
    )


def render_markdown(
    table: Table, seeds: list[int], numbers: dict, source: str | None, avvp: bool = False
) -> str:
    """The markdown of one table (both label sets where the runs have corrected labels)."""
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
        ]
    if table.note:
        lines += [f"Note: {table.note}", "", ""]
    for label_set, sets in numbers.items():
        title = "original labels (O-AVE)" if label_set == "o_ave" else "corrected labels (C-AVE)"
        title = "LLP test videos" if avvp else title
        lines += [
            f"## {title}",
            "",
            "Each cell: **our mean** [95 % CI over test videos and seeds], the paper's number, "
            "and Δ to the reference row [paired 95 % CI]; percent.",
            "",
            "| Row | " + " | ".join(TITLES[m] for m in table.metrics) + " |",
            "|---|" + "---|" * len(table.metrics),
        ]
        for row in table.rows:
            paper = getattr(row.paper, label_set) or {}
            name = f"{row.label} (`{row.name}`)"
            if not row.runnable:
                name += f"<br>not run: {row.not_run}"
            elif sets.get(row.name) is None:
                name += "<br>missing: no finished experiment"
            cells = [_cell_text(sets.get(row.name), m, paper.get(m)) for m in table.metrics]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines += ["", order_line(table, sets, label_set, table.metrics[0]), ""]
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
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(4, 0.9 * len(rows) + 2), 4))
    errors = [np.subtract(means, lows), np.subtract(highs, means)]
    ax.bar(x, means, yerr=errors, capsize=4, color="#4c72b0", label="ours (95 % CI)")
    marks = [(i, p) for i, p in enumerate(paper) if p is not None]
    if marks:
        ax.scatter(*zip(*marks, strict=True), color="#dd8452", zorder=3, label="paper")
    ax.set_xticks(x, [row.name for row in rows], rotation=30, ha="right")
    ax.set_ylabel(f"{TITLES[metric]} (%)")
    ax.set_title(f"{table.caption} ({table.ref})", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def render(tables: list[Table], seeds: list[int], out_dir: Path = TABLES_DIR) -> list[Path]:
    """Render each table from the experiments of ``HEAD``, and the index page."""
    cells = plan(tables, seeds)
    runs = Runs(head())
    written = []
    for table in tables:
        numbers = {"o_ave": table_numbers(table, seeds, cells, runs, "o_ave")}
        first = next(iter(cells[(table.id, r.name, seeds[0])] for r in table.rows if r.runnable))
        if _has_right_labels(runs, first):
            numbers["c_ave"] = table_numbers(table, seeds, cells, runs, "c_ave")
        text = render_markdown(table, seeds, numbers, runs.data_source(first), is_avvp(first))
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
    lines = ["# Ablation tables", "", "Rendered by `python -m pipeline.tables`.", ""]
    for path in sorted(out_dir.glob("*.md")):
        if path.name == "README.md":
            continue
        caption = path.read_text().splitlines()[0].removeprefix("# ")
        lines.append(f"- [{path.stem}]({path.name}): {caption}")
    with atomic_path(out_dir / "README.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def _selected(ids: list[str], definitions) -> list[Table]:
    if ids == ["all"]:
        return list(definitions.tables)
    return [definitions.table(table_id) for table_id in ids]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.tables", description=__doc__)
    parser.add_argument("command", choices=["run", "render", "list"])
    parser.add_argument("tables", nargs="*", default=["all"], help="table ids, or all")
    parser.add_argument("--seeds", type=int, default=3, help="train.seed = 0..N-1 (default 3)")
    parser.add_argument("--jobs", type=int, default=1, help="parallel queue workers (default 1)")
    parser.add_argument("--file", default="ablations.yaml", help="table definitions")
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
    if args.command == "run":
        experiments = {cell.experiment for cell in plan(tables, seeds).values()}
        run_experiments(sorted(experiments, key=lambda e: e.name), args.jobs)
    for path in render(tables, seeds):
        print(f"tables: wrote {path}")


if __name__ == "__main__":
    run_stage(lambda: main(sys.argv[1:]))
