"""The site from a tiny project: runs, pages, chart data and DVC templates, the figure."""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import vl_convert

from pipeline.errors import PipelineError
from pipeline.site.build import Site, build, class_names, compared_sources
from pipeline.site.cli import main
from pipeline.site.figure import export, figure_spec
from pipeline.site.runs import WORKSPACE, collect, differing_params
from tests.site.conftest import N_VIDEOS, NAMES, SEEDS


def test_collect_reads_the_workspace_and_the_experiments_changed_tasks(in_project):
    runs = collect()
    assert runs[0].name == WORKSPACE and set(runs[0].results) == {"sel", "wsel"}
    assert len(runs) == 1 + 2 * len(SEEDS)  # 2 rows x 2 seeds
    for run in runs[1:]:
        assert run.name.startswith("abl-") and run.commit
        assert set(run.results) == {"sel"}  # wsel is the baseline's blob: left out
        assert run.results["sel"].curves == runs[0].results["sel"].curves
    assert runs[0].results["sel"].class_names == NAMES
    assert runs[0].results["wsel"].class_names is None
    assert differing_params(runs) == ["augment.link", "augment.replicate", "train.seed"]
    with pytest.raises(PipelineError, match=r"--runs: no experiment of HEAD named \['nope'\]"):
        collect(["nope"])


@pytest.fixture(scope="module")
def site(project, tmp_path_factory):
    out = tmp_path_factory.mktemp("built") / "site"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        built = Site(collect(), seeds=len(SEEDS))
        build(built, out)
    return built, out


def test_every_page_is_written_and_loads_only_local_files(site):
    _, out = site
    for page in ("index", "tables", "videos", "per-class", "training"):
        text = (out / f"{page}.html").read_text()
        assert '<script src="vega.js"></script>' in text
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), page
    assert (out / "vega.js").read_text() == vl_convert.javascript_bundle()


def test_experiments_page_lists_every_run_and_task_with_the_differing_params(site):
    built, out = site
    text = (out / "index.html").read_text()
    assert text.count("<tr>") == 1 + 2 + 2 * len(SEEDS)  # header, workspace tasks, runs
    for key in ("augment.link", "augment.replicate", "train.seed"):
        assert f"<th>{key}</th>" in text
    assert text.count("tiny/base (seed ") == 2 and text.count("tiny/rep (seed 1)") == 1
    records = json.loads((out / "data" / "experiments.json").read_text())
    mine = [r for r in records if r["run"] == "workspace:sel" and r["metric"] == "Accuracy"]
    accuracy = built.runs[0].results["sel"].metrics["model"]["accuracy"]
    assert mine[0]["value"] == pytest.approx(100 * accuracy, abs=0.01)
    assert mine[0]["ci_low"] <= mine[0]["value"] <= mine[0]["ci_high"]


def test_tables_are_recomputed_from_the_experiments(site):
    built, out = site
    records = {
        r["row"]: r for r in json.loads((out / "data" / "table-tiny-accuracy.json").read_text())
    }
    for row in ("base", "rep"):
        runs = [
            run
            for run in built.runs[1:]
            if run.params[{"base": "augment.replicate", "rep": "augment.link"}[row]] is False
        ]
        kept = [run.results["sel"].predictions for run in runs]
        accuracy = np.mean([np.mean(k["model"] == k["labels"]) for k in kept])
        assert records[row]["mean"] == pytest.approx(100 * accuracy, abs=0.01)
    assert records["rep"]["paper"] == 78.08
    text = (out / "tables.html").read_text()
    assert "seed(s) 0, 1 (those run)" in text and "Δ" in text and "paper 77.5" in text
    assert '<a href="#tiny">Replicate on the tiny store</a>' in text  # the contents


def test_chart_data_files_come_with_dvc_templates(site):
    _, out = site
    names = sorted(p.stem for p in (out / "data").glob("*.json"))
    expected = ["confusion", "experiments", "per_class", "per_class_difference"]
    tables = ["table-tiny-accuracy", "table-tiny-non_ave_f1"]  # a chart per metric
    assert names == sorted([*expected, *tables, "training"])
    for name in names:
        template = json.loads((out / "templates" / f"{name}.json").read_text())
        assert template["data"] == {"values": "<DVC_METRIC_DATA>"}
        assert "$schema" in template and "vega-lite" in template["$schema"]


def test_per_class_and_confusion_records_match_the_predictions(site):
    built, out = site
    sel = built.runs[0].results["sel"].predictions
    bars = json.loads((out / "data" / "per_class.json").read_text())
    for record in (r for r in bars if r["run"] == "workspace:sel"):
        c = NAMES.index(record["class"])
        mask = sel["labels"] == c
        assert record["support"] == mask.sum()
        assert record["accuracy"] == pytest.approx(100 * np.mean(sel["model"][mask] == c), abs=0.01)
    cells = json.loads((out / "data" / "confusion.json").read_text())
    assert sum(c["count"] for c in cells if c["run"] == "workspace:sel") == sel["labels"].size
    diffs = json.loads((out / "data" / "per_class_difference.json").read_text())
    assert {d["comparison"] for d in diffs} == {"workspace:wsel − workspace:sel"}
    assert all(d["ci_low"] <= d["diff"] <= d["ci_high"] for d in diffs)


def test_videos_page_holds_every_test_video_and_the_filters(site):
    _, out = site
    text = (out / "videos.html").read_text()
    data = json.loads(re.search(r"window\.VIDEOS = (\{.*?\});\n", text).group(1))
    assert len(data["videos"]) == N_VIDEOS
    assert data["filters"]["all videos"] == list(range(N_VIDEOS))
    assert set(data["filters"]) >= {"models disagree", "only workspace:wsel wrong"}
    first = data["videos"][0]["datasets"]["segments"]
    assert {s["source"] for s in first} == {"ground truth", "workspace:sel", "workspace:wsel"}
    assert any(s["p"] is not None for s in first)


def test_compared_runs_must_exist_and_share_the_test_labels(in_project):
    runs = collect()
    with pytest.raises(PipelineError, match=r"--compare: unknown run:task \['workspace:x'\]"):
        compared_sources(Site(runs, ["workspace:x"]))
    runs[1].results["sel"].predictions["labels"] = runs[1].results["sel"].predictions["labels"] + 1
    label = f"{runs[1].name}:sel"
    with pytest.raises(PipelineError, match=r"scored on other test labels"):
        compared_sources(Site(runs, ["workspace:sel", label]))


def test_figure_is_a_pdf_and_a_png_at_publication_size(in_project, tmp_path):
    sources = compared_sources(Site(collect(), ["workspace:sel", "workspace:wsel"]))
    spec = figure_spec([0, 3], sources, class_names(sources), width_in=7.0)
    assert len(spec["vconcat"]) == 2 and set(spec["datasets"]) == {
        "segments_0",
        "spans_0",
        "segments_3",
        "spans_3",
    }
    pdf, png = export(spec, tmp_path / "fig", dpi=100)
    assert pdf.read_bytes().startswith(b"%PDF")
    width = int.from_bytes(png.read_bytes()[16:20], "big")  # the IHDR width
    assert 6.0 * 100 <= width <= 7.0 * 100  # at most the 7 inches asked for, at 100 dpi
    with pytest.raises(PipelineError, match=r"--videos: expected test indices in \[0, 12\)"):
        figure_spec([12], sources, None)


def test_the_command_line_builds_and_exports(in_project, tmp_path, capsys):
    main(["figure", "--videos", "1", "--compare", "workspace:sel", "--out", str(tmp_path / "f")])
    assert (tmp_path / "f.pdf").exists() and (tmp_path / "f.png").exists()
    main(["build", "--out", str(tmp_path / "s"), "--seeds", "2"])
    assert (tmp_path / "s" / "videos.html").exists()
    assert "site: wrote" in capsys.readouterr().out


def test_a_chart_data_file_draws_with_dvc_plots_and_its_template(site, tmp_path):
    _, out = site
    repo = tmp_path / "repo"
    for sub in ("data", "templates"):
        shutil.copytree(out / sub, repo / sub)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}

    def dvc(*args: str) -> str:
        command = [sys.executable, "-m", "dvc", *args]
        done = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    dvc("init", "--no-scm", "-q")
    shown = dvc("plots", "show", "data/per_class.json", "-t", "templates/per_class.json", "--json")
    content = json.loads(shown)["data"]["data/per_class.json"][0]["content"]
    records = json.loads((out / "data" / "per_class.json").read_text())
    assert len(content["data"]["values"]) == len(records)
    assert content["encoding"]["xOffset"]["field"] == "run"  # the site's own spec
