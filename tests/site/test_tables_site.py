"""``tables render --site``, and the Tables page without the experiments of a table."""

import shutil

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
    assert "recomputed from 2 seeds" in page and "Replicate on the tiny store" in page


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
    build(Site(collect(), seeds=len(SEEDS)), out)
    page = (out / "tables.html").read_text()
    assert "the committed reports/tables/tiny.md" in page
    assert "<td>base</td>" in page and '<img src="assets/tiny.png"' in page
    assert (out / "assets" / "tiny.png").read_bytes() == b"\x89PNG\r\n\x1a\n"
    assert "table-tiny" not in page  # no chart without the experiments' numbers
