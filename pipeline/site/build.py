"""Build ``reports/site/``: five static pages that work from ``file://`` with no network.

Pages (see :mod:`pipeline.site` for why a command and not a DVC stage builds them):

- ``index.html``, Experiments: every run (the workspace and the experiments of ``HEAD``)
  and task, the params that differ between runs, the headline metrics with their 95 % CIs
  (sortable), and a chart of them;
- ``tables.html``: each paper table of ``ablations.yaml`` (:mod:`pipeline.experiments.tables`):
with its
  experiments present, recomputed (CIs, paired differences, the paper's column) with a
  chart; otherwise the committed ``reports/tables/<id>.md`` and its figure;
- ``videos.html``: the test videos' timelines (ground truth and each compared run), with
  class names where the store has them, probabilities on hover and filters;
- ``per-class.html``: accuracy per class of each compared run, the difference to the first
  one with its paired bootstrap CI (:mod:`pipeline.site.compare`), confusion matrices;
- ``training.html``: dvclive's loss, val accuracy and learning rate per epoch of every run.

Beside the pages: ``vega.js`` (from ``vl-convert-python``), and for every chart its data
``data/<name>.json`` and a DVC plots template ``templates/<name>.json``.
"""

import json
import shutil
from dataclasses import dataclass
from html import escape
from pathlib import Path

import numpy as np
import vl_convert
from markdown_it import MarkdownIt

from pipeline.errors import PipelineError
from pipeline.evaluation.stats import video_confusions
from pipeline.experiments.ablations import load_ablations, plan
from pipeline.experiments.reuse import TABLES_DIR, head
from pipeline.experiments.tables import TITLES, Runs, render_markdown, table_numbers
from pipeline.io import atomic_dir
from pipeline.site import charts
from pipeline.site.compare import per_class_difference
from pipeline.site.html import chart_div, inline_json, page, table
from pipeline.site.runs import Run, degenerate, differing_params
from pipeline.site.videos import Source, filters, timeline_datasets, video_title

SITE_DIR = Path("reports") / "site"
MAX_COMPARED = 4
MAX_SEEDS = 10  # seeds looked for when the site is not told how many


@dataclass
class Site:
    """What the pages are built from.

    Args:
        runs: the workspace and the experiments (:func:`pipeline.site.runs.collect`).
        compared: ``run:task`` labels of the runs the Videos and Per-class pages compare
            (default: every run and task when there are at most four, else the workspace's).
        tables_file: the table definitions (default: ``ablations.yaml``).
        seeds: seeds per table row (default ``None``: per table, the seeds of which an
            experiment of ``HEAD`` exists, among the first :data:`MAX_SEEDS`).
    """

    runs: list[Run]
    compared: list[str] | None = None
    tables_file: Path = Path("ablations.yaml")
    seeds: int | None = None


def _pct(value) -> float | None:
    """Percent with two decimals; ``None`` for a missing or undefined (NaN) value."""
    if value is None or not np.isfinite(value):
        return None
    return round(100 * float(value), 2)


def _entries(runs: list[Run]) -> dict[str, tuple[Run, str]]:
    return {f"{run.name}:{task}": (run, task) for run in runs for task in run.results}


def compared_sources(site: Site) -> list[Source]:
    """The runs compared video by video; they must share the test labels."""
    entries = _entries(site.runs)
    chosen = site.compared
    if chosen is None:
        chosen = list(entries)
        if len(chosen) > MAX_COMPARED:
            chosen = [label for label in entries if label.startswith(site.runs[0].name + ":")]
    unknown = [label for label in chosen if label not in entries]
    if unknown:
        raise PipelineError(f"--compare: unknown run:task {unknown}; found {sorted(entries)}")
    sources = [Source(label, entries[label][0].results[entries[label][1]]) for label in chosen]
    if not sources:
        raise PipelineError("--compare: expected at least one evaluated run:task, found none")
    labels = sources[0].result.predictions["labels"]
    for source in sources[1:]:
        if not np.array_equal(source.result.predictions["labels"], labels):
            raise PipelineError(
                f"--compare: {source.label} was scored on other test labels than "
                f"{sources[0].label}; compare runs of one test split"
            )
    return sources


def class_names(sources: list[Source]) -> list[str] | None:
    return next((s.result.class_names for s in sources if s.result.class_names), None)


class Writer:
    """Writes the site's files into a directory; collects each chart's data and template."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for sub in ("data", "templates", "assets"):
            (root / sub).mkdir(parents=True, exist_ok=True)

    def chart(self, name: str, spec: dict, records: list[dict] | None = None) -> dict:
        """Keep the chart's data file and DVC template (when it has flat data); return it."""
        if records is not None:
            lines = ",\n".join(json.dumps(r, allow_nan=False) for r in records)
            self.text(f"data/{name}.json", f"[\n{lines}\n]\n")  # a record per line
            self.json(f"templates/{name}.json", charts.dvc_template(spec))
        return spec

    def json(self, name: str, value) -> None:
        (self.root / name).write_text(json.dumps(value, indent=1, allow_nan=False))

    def text(self, name: str, text: str) -> None:
        (self.root / name).write_text(text)


def _as_float(printed) -> float | None:
    """A paper number (a :class:`~decimal.Decimal` as printed) as a chart value."""
    return None if printed is None else float(printed)


def _ci_text(metrics: dict, key: str) -> tuple[str, float | None]:
    value = metrics.get(key)
    if value is None:
        return "–", None
    low, high = metrics.get(f"{key}_ci_low"), metrics.get(f"{key}_ci_high")
    text = f"{100 * value:.1f}"
    if low is not None and high is not None:
        text += f" [{100 * low:.1f}, {100 * high:.1f}]"
    return text, round(100 * value, 4)


def table_rows(site: Site) -> dict[str, list[str]]:
    """Experiment name -> the ``table/row (seed s)`` cells of ``ablations.yaml`` it fills."""
    definitions = load_ablations(site.tables_file)
    found: dict[str, list[str]] = {}
    seeds = range(site.seeds or MAX_SEEDS)
    for (table_id, row, seed), cell in plan(definitions.tables, seeds).items():
        for experiment in cell.candidates():  # whichever of them exists fills the cell
            found.setdefault(experiment.name, []).append(f"{table_id}/{row} (seed {seed})")
    return found


def experiments_page(site: Site, out: Writer) -> None:
    keys = differing_params(site.runs)
    fills = table_rows(site)
    rows, records = [], []
    for label, (run, task) in _entries(site.runs).items():
        model = run.results[task].metrics.get("model", {})
        cells = [(run.name, None), (task, None), (", ".join(fills.get(run.name, [])), None)]
        flag = degenerate(run.results[task])
        cells.append((f"⚠ degenerate: {flag}" if flag else "", None))
        cells += [(json.dumps(run.params.get(key)), None) for key in keys]
        cells += [_ci_text(model, metric) for metric in charts.HEADLINE_TITLES]
        rows.append(cells)
        for metric, title in charts.HEADLINE_TITLES.items():
            if model.get(metric) is not None:
                records.append(
                    {
                        "run": label,
                        "metric": title,
                        "value": _pct(model[metric]),
                        "ci_low": _pct(model.get(f"{metric}_ci_low")),
                        "ci_high": _pct(model.get(f"{metric}_ci_high")),
                    }
                )
    headers = [
        "Run",
        "Task",
        "Table rows",
        "Flags",
        *keys,
        *(f"{t} [95 % CI]" for t in charts.HEADLINE_TITLES.values()),
    ]
    note = (
        f"{len(site.runs)} runs: the workspace and the DVC experiments of HEAD. Params shown: "
        "those that differ between runs. Metrics of the model's test predictions, percent, "
        "with the evaluate stage's 95 % bootstrap CI over test videos. Click a header to sort. "
        "Flags: a degenerate model (one class on every test segment, or below predicting the "
        "most frequent class everywhere)."
    )
    for run in site.runs:
        if run.note:
            note += f"</p><p class=warning>{run.name}: {escape(run.note)}"
    spec = out.chart("experiments", charts.metrics_chart(records), records)
    body = f"<p class=note>{note}</p>{table(headers, rows)}{chart_div('metrics')}"
    out.text("index.html", page("index.html", "Experiments", body, {"metrics": spec}))


def _table_records(table_def, numbers: dict, metric: str) -> list[dict]:
    """One chart's records: each row's mean and CI of ``metric``, and the paper's number."""
    records = []
    for row in table_def.rows:
        found = numbers.get(row.name)
        if not found:
            continue
        summary = found["summary"][metric]
        records.append(
            {
                "row": row.name,
                "mean": _pct(summary["mean"]),
                "ci_low": _pct(summary["ci_low"]),
                "ci_high": _pct(summary["ci_high"]),
                "paper": _as_float(row.paper.o_ave.get(metric)),
            }
        )
    return records


def seeds_run(table_def, every_table, runs: Runs, limit: int = MAX_SEEDS) -> list[int]:
    """The seeds of which some row of ``table_def`` has an experiment (``runs``)."""
    cells = plan([table_def], range(limit), every_table)
    return sorted({seed for (_, _, seed), cell in cells.items() if runs.commit(cell)})


def tables_page(site: Site, out: Writer) -> None:
    markdown = MarkdownIt("commonmark", {"html": True}).enable("table")
    definitions = load_ablations(site.tables_file)
    runs = Runs(head())
    sections, specs, absent, contents = [], {}, [], []
    for table_def in definitions.tables:
        seeds = (
            list(range(site.seeds))
            if site.seeds
            else seeds_run(table_def, definitions.tables, runs)
        )
        cells = plan(definitions.tables, seeds or [0])
        numbers = {"o_ave": table_numbers(table_def, seeds, cells, runs, "o_ave")} if seeds else {}
        committed = TABLES_DIR / f"{table_def.id}.md"
        if seeds and any(numbers["o_ave"].values()):
            first = next(
                cells[(table_def.id, r.name, seeds[0])] for r in table_def.rows if r.runnable
            )
            text = render_markdown(table_def, seeds, numbers, runs.data_source(first))
            figure = ""
            for metric in table_def.metrics:  # a chart per metric
                records = _table_records(table_def, numbers["o_ave"], metric)
                chart_id = f"table-{table_def.id}-{metric}"
                spec = charts.table_chart(records, TITLES[metric])
                specs[chart_id] = out.chart(chart_id, spec, records)
                figure += chart_div(chart_id)
            missing = [
                r.name for r in table_def.rows if r.runnable and not numbers["o_ave"][r.name]
            ]
            origin = (
                f"recomputed from the experiments of HEAD, seed(s) {', '.join(map(str, seeds))} "
                "(those run)" + (f"; rows missing a seed: {', '.join(missing)}" if missing else "")
            )
        elif committed.exists():
            text = committed.read_text()
            figure = ""
            png = committed.with_suffix(".png")
            if png.exists():
                shutil.copyfile(png, out.root / "assets" / png.name)
                figure = f'<figure><img src="assets/{png.name}" alt="{table_def.id}"></figure>'
            origin = (
                f"the committed {committed}: none of its experiments is among those of HEAD "
                "here (they ran elsewhere, or at an earlier commit)"
            )
        else:
            absent.append(table_def.id)
            continue
        contents.append(f'<li><a href="#{table_def.id}">{escape(table_def.caption)}</a></li>')
        sections.append(
            f'<section id="{table_def.id}"><p class=note>Source: {origin}.</p>'
            f"{markdown.render(text)}{figure}</section><hr>"
        )
    if absent:
        sections.append(
            "<p class=note>Not run (no experiment, no committed table): "
            + ", ".join(absent)
            + ". Run them with <code>python -m pipeline.experiments.tables run ID</code>.</p>"
        )
    toc = f"<div id=contents><h2>Contents</h2><ol>{''.join(contents)}</ol></div>"
    body = toc + "\n".join(sections)
    out.text("tables.html", page("tables.html", "Paper tables", body, specs))


VIDEOS_JS = """
(function () {
  const V = window.VIDEOS, PAGE = 10;
  const select = document.getElementById('filter');
  const list = document.getElementById('videos');
  const count = document.getElementById('count');
  let start = 0, views = [], drawn = 0;
  function show() {
    views.forEach(function (v) { v.finalize(); });
    views = [];
    const mine = ++drawn;
    list.textContent = '';
    const keep = V.filters[select.value];
    const shown = keep.slice(start, start + PAGE);
    count.textContent = keep.length
      ? 'videos ' + (start + 1) + '-' + (start + shown.length) + ' of ' + keep.length
      : 'no video';
    shown.forEach(function (i) {
      const video = V.videos[i];
      const div = document.createElement('div');
      div.className = 'video';
      const title = document.createElement('h3');
      title.textContent = video.title;
      const chart = document.createElement('div');
      div.append(title, chart);
      list.append(div);
      const spec = Object.assign({}, V.template, {datasets: video.datasets});
      vegaEmbed(chart, spec, {renderer: 'svg', actions: false}).then(function (result) {
        if (mine === drawn) { views.push(result); } else { result.finalize(); }
      });
    });
  }
  select.addEventListener('change', function () { start = 0; show(); });
  document.getElementById('prev').addEventListener('click', function () {
    start = Math.max(0, start - PAGE); show();
  });
  document.getElementById('next').addEventListener('click', function () {
    if (start + PAGE < V.filters[select.value].length) { start += PAGE; show(); }
  });
  show();
})();
"""


def videos_page(site: Site, sources: list[Source], out: Writer) -> None:
    labels = sources[0].result.predictions["labels"]  # (n, T)
    rows = sources[0].result.predictions.get("rows", np.arange(len(labels)))
    names = class_names(sources)
    videos = [
        {
            "title": video_title(i, int(rows[i]), labels[i], names),
            "datasets": timeline_datasets(i, labels, sources, names),
        }
        for i in range(len(labels))
    ]
    chosen = filters(labels, sources)
    has_p = all("model_top_probabilities" in s.result.predictions for s in sources)
    template = charts.timeline_chart(
        ["ground truth", *(s.label for s in sources)], names, labels.shape[1], has_p
    )
    options = "".join(
        f'<option value="{name}">{name} ({len(kept)})</option>' for name, kept in chosen.items()
    )
    note = (
        "Seed 004, Fig. 4 style: the ground truth, then each compared run's predictions "
        "(its model output), one bar per second; events coloured and named by class, "
        "background white. Hover a segment for "
        + ("its probability and the three most probable classes." if has_p else "its class.")
    )
    if names is None:
        note += " The store has no Annotations.txt: classes are shown by index."
    for source in sources:
        flag = degenerate(source.result)
        if flag:  # its rows would look empty, not wrong
            note += f"</p><p class=warning>⚠ {source.label} is degenerate: {flag}."
    body = (
        f"<p class=note>{note}</p><div class=controls><label>Show "
        f"<select id=filter>{options}</select></label>"
        "<button id=prev>previous</button><button id=next>next</button>"
        "<span id=count></span></div><div id=videos></div>"
    )
    data = {"template": template, "videos": videos, "filters": chosen}
    script = f"window.VIDEOS = {inline_json(data)};{VIDEOS_JS}"
    out.text("videos.html", page("videos.html", "Test videos", body, {}, script))


def per_class_records(sources: list[Source], classes: list[str]) -> tuple[list, list]:
    """Accuracy per class of each run, and each run's difference to the first one."""
    labels = sources[0].result.predictions["labels"]
    reference = sources[0]
    bars, diffs = [], []
    for source in sources:
        found = per_class_difference(
            labels, source.result.predictions["model"], reference.result.predictions["model"]
        )
        for c in np.flatnonzero(found["support"]):
            bars.append(
                {
                    "class": classes[c],
                    "run": source.label,
                    "accuracy": _pct(found["accuracy"][c]),
                    "support": int(found["support"][c]),
                }
            )
            if source is not reference:
                diffs.append(
                    {
                        "comparison": f"{source.label} − {reference.label}",
                        "class": classes[c],
                        **{key: _pct(found[key][c]) for key in ("diff", "ci_low", "ci_high")},
                    }
                )
    return bars, diffs


def confusion_records(sources: list[Source], classes: list[str]) -> list[dict]:
    """The non-zero cells of each run's confusion matrix, with their share of the row."""
    labels = sources[0].result.predictions["labels"]
    cells = []
    for source in sources:
        counts = video_confusions(labels, source.result.predictions["model"], len(classes))
        matrix = counts.sum(axis=0).reshape(len(classes), len(classes))  # (C, C)
        support = matrix.sum(axis=1)  # (C,)
        for t, p in zip(*np.nonzero(matrix), strict=True):
            cells.append(
                {
                    "run": source.label,
                    "true": classes[t],
                    "predicted": classes[p],
                    "share": round(float(matrix[t, p] / support[t]), 4),
                    "count": int(matrix[t, p]),
                }
            )
    return cells


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.1f}"


def per_class_page(site: Site, sources: list[Source], out: Writer) -> None:
    names = class_names(sources)
    classes = [charts.class_label(c, names) for c in range(charts.BACKGROUND + 1)]
    bars, diffs = per_class_records(sources, classes)
    specs = {"per-class": out.chart("per_class", charts.per_class_chart(bars, classes), bars)}
    n = len(sources[0].result.predictions["labels"])
    body = (
        "<p class=note>Accuracy of each true class (its recall) of the model output of each "
        f"compared run, percent, on the {n} test videos.</p>" + chart_div("per-class")
    )
    if diffs:
        rows = [
            [
                (d["comparison"], None),
                (d["class"], None),
                (
                    f"{_signed(d['diff'])} [{_signed(d['ci_low'])}, {_signed(d['ci_high'])}]",
                    d["diff"],
                ),
            ]
            for d in diffs
        ]
        specs["difference"] = out.chart(
            "per_class_difference", charts.difference_chart(diffs, classes), diffs
        )
        body += (
            f"<h2>Difference to {sources[0].label}</h2><p class=note>Points of accuracy, with "
            "the paired 95 % bootstrap CI (the same resampled test videos for both runs). "
            "Click a header to sort.</p>"
            + chart_div("difference")
            + "<details><summary>as a table</summary>"
            + table(["Comparison", "Class", "Δ [95 % CI]"], rows)
            + "</details>"
        )
    cells = confusion_records(sources, classes)
    specs["confusion"] = out.chart("confusion", charts.confusion_chart(cells, classes), cells)
    body += (
        "<h2>Confusion matrices</h2><p class=note>Rows: true class; share of its "
        "segments predicted as each class.</p>" + chart_div("confusion")
    )
    out.text("per-class.html", page("per-class.html", "Per class", body, specs))


def training_page(site: Site, out: Writer) -> None:
    records = []
    for label, (run, task) in _entries(site.runs).items():
        for curve, points in run.results[task].curves.items():
            title = charts.CURVE_TITLES[curve]
            records += [{"run": label, "curve": title, "step": s, "value": v} for s, v in points]
    specs, body = {}, "<p class=note>No dvclive training log found.</p>"
    if records:
        specs["training"] = out.chart("training", charts.training_chart(records), records)
        body = (
            "<p class=note>dvclive's per-epoch curves (<code>metrics/train_log/&lt;task&gt;/"
            "</code>) of every run and task. An experiment that only re-evaluated keeps its "
            "baseline's log and is not repeated.</p>" + chart_div("training")
        )
    out.text("training.html", page("training.html", "Training", body, specs))


def build(site: Site, out_dir: Path = SITE_DIR) -> Path:
    """Write every page of the site into ``out_dir`` at once (nothing half-written)."""
    sources = compared_sources(site)
    with atomic_dir(out_dir) as tmp:
        out = Writer(tmp)
        out.text("vega.js", vl_convert.javascript_bundle())
        experiments_page(site, out)
        tables_page(site, out)
        videos_page(site, sources, out)
        per_class_page(site, sources, out)
        training_page(site, out)
    return out_dir / "index.html"
