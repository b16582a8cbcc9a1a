"""``tables render --site``, and the Tables page without the experiments of a table."""

import shutil

from pipeline.experiments.ablations import load_ablations, plan
from pipeline.experiments.tables import main as tables_main
from pipeline.site.build import Site, build
from pipeline.site.runs import collect
from tests.site.conftest import SEEDS, git


def test_render_with_site_writes_the_tables_then_the_site(project, tmp_path, monkeypatch):
    copy = tmp_path / "project"
    shutil.copytree(project, copy)
    monkeypatch.chdir(copy)
    tables_main(["render", "tiny", "--seeds", str(len(SEEDS)), "--site"])
    assert (copy / "reports" / "tables" / "tiny.md").exists()
    page = (copy / "reports" / "site" / "tables.html").read_text()
    assert "seed(s) 0, 1 (those run)" in page and "Replicate on the tiny store" in page


def test_without_its_experiments_a_table_shows_the_committed_markdown_and_figure(
    project, tmp_path, monkeypatch
):
    copy = tmp_path / "project"
    shutil.copytree(project, copy)
    monkeypatch.chdir(copy)
    refs = git(copy, "for-each-ref", "--format=%(refname)", "refs/exps/").split()
    for ref in refs:
        git(copy, "update-ref", "-d", ref)
    tables = copy / "reports" / "tables"
    tables.mkdir(parents=True)
    (tables / "tiny.md").write_text("# Tiny\n\n| Row | Accuracy |\n|---|---|\n| base | 1.0 |\n")
    (tables / "tiny.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    out = tmp_path / "site"
    build(Site(collect()), out)  # seeds: those run, none here
    page = (out / "tables.html").read_text()
    assert "the committed reports/tables/tiny.md: none of its experiments" in page
    assert "<td>base</td>" in page and '<img src="assets/tiny.png"' in page
    assert (out / "assets" / "tiny.png").read_bytes() == b"\x89PNG\r\n\x1a\n"
    assert "table-tiny" not in page  # no chart without the experiments' numbers


def test_by_default_a_table_shows_the_seeds_that_were_run(project, tmp_path, monkeypatch):
    # one seed run: the table shows it (not "missing" rows for seeds never run)
    copy = tmp_path / "project"
    shutil.copytree(project, copy)
    monkeypatch.chdir(copy)
    seed_1 = {c.experiment.name for c in plan(load_ablations().tables, [1]).values()}
    for ref in git(copy, "for-each-ref", "--format=%(refname)", "refs/exps/").split():
        if ref.rsplit("/", 1)[1] in seed_1:
            git(copy, "update-ref", "-d", ref)
    out = tmp_path / "site"
    build(Site(collect()), out)
    page = (out / "tables.html").read_text()
    assert "seed(s) 0 (those run)" in page and "missing" not in page
