"""The site in a real browser: Debian's Chromium, headless, driven by Playwright.

Playwright's own browser download is neither reachable nor needed: the test launches
``/usr/bin/chromium`` (installed by ``.ci/run``) and skips only when it is absent. Each page
of a site built from the tiny project is opened from ``file://``; the tests assert no page
error, no failed request, no request that is not a local file, the number of charts drawn
(Vega's ``svg.marks``), that a filter changes the videos shown, that hovering a segment
shows its probability, and that a click on a header sorts the experiments. A second site,
built with the default seeds from a copy whose ``params.yaml`` differs from its ``dvc.lock``
and whose WSEL model predicts background everywhere, shows the warning, the flags, the
tables' contents and seeds, a chart per table metric, whole-number epoch ticks, and
overlapping training curves drawn apart. Screenshots go to the test's temporary folder
(``screenshots/``).
"""

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.site.build import Site, build
from pipeline.site.runs import collect
from tests.site.conftest import N_VIDEOS, SEEDS, write_task

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# page -> charts drawn: the metrics; the tiny table's two metrics; 10 videos of the first
# page; per-class bars, differences and confusion matrices; the training curves
CHARTS = {"index": 1, "tables": 2, "videos": 10, "per-class": 3, "training": 1}

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, tmp_path):
    """A page that records errors and requests, and the folder for its screenshots."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.problems, page.requests = [], []
    page.on("pageerror", lambda error: page.problems.append(f"page error: {error}"))
    page.on("requestfailed", lambda r: page.problems.append(f"failed request: {r.url}"))
    page.on("request", lambda request: page.requests.append(request.url))
    page.on(
        "console",
        lambda m: m.type in ("error", "warning") and page.problems.append(f"console: {m.text}"),
    )
    page.shots = tmp_path / "screenshots"
    page.shots.mkdir()
    yield page
    page.close()


@pytest.fixture(scope="module")
def site(project, tmp_path_factory):
    out = tmp_path_factory.mktemp("browsed") / "site"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        build(Site(collect(), seeds=len(SEEDS)), out)
    return out


def _charts(page) -> int:
    page.wait_for_function("document.querySelectorAll('svg.marks').length > 0")
    page.wait_for_load_state("networkidle")
    return page.locator("svg.marks").count()


def test_every_page_draws_its_charts_offline(page, site):
    for name, expected in CHARTS.items():
        page.goto((site / f"{name}.html").as_uri())
        assert _charts(page) == expected, name
        page.screenshot(path=page.shots / f"{name}.png", full_page=True)
    assert page.problems == []
    assert page.requests and all(url.startswith("file://") for url in page.requests)


def test_the_experiments_table_sorts_by_a_clicked_column(page, site):
    page.goto((site / "index.html").as_uri())
    headers = page.locator("table.sortable th").all_inner_texts()
    index = next(i for i, h in enumerate(headers, 1) if h.startswith("Accuracy"))
    column = f"table.sortable td:nth-child({index})"
    page.click("th:has-text('Accuracy')")
    values = [
        float(v) for v in page.eval_on_selector_all(column, "c => c.map(x => x.dataset.value)")
    ]
    assert values == sorted(values) and len(values) == 2 + 2 * len(SEEDS)
    page.click("th:has-text('Accuracy')")
    again = [
        float(v) for v in page.eval_on_selector_all(column, "c => c.map(x => x.dataset.value)")
    ]
    assert again == sorted(values, reverse=True)


def test_a_filter_changes_the_videos_shown_and_hover_shows_probabilities(page, site):
    page.goto((site / "videos.html").as_uri())
    assert _charts(page) == 10
    assert page.locator("#count").inner_text() == f"videos 1-10 of {N_VIDEOS}"
    options = page.locator("#filter option").all_inner_texts()
    chosen = next(o for o in options if o.startswith("every model wrong"))
    wanted = int(chosen.rsplit("(", 1)[1].rstrip(")"))
    assert 0 < wanted < 10  # the fixture's data: a filter that shows fewer videos
    page.select_option("#filter", label=chosen)
    page.wait_for_function(f"document.querySelectorAll('svg.marks').length === {wanted}")
    assert page.locator(".video").count() == wanted
    page.click("#next")  # nothing after the only page of this filter
    assert page.locator(".video").count() == wanted
    page.select_option("#filter", label=options[0])
    page.click("#next")
    page.wait_for_function(f"document.querySelectorAll('svg.marks').length === {N_VIDEOS - 10}")
    assert page.locator("#count").inner_text() == f"videos 11-{N_VIDEOS} of {N_VIDEOS}"
    page.click("#prev")
    page.wait_for_function("document.querySelectorAll('svg.marks').length === 10")
    # a predicted segment of the first video (third bar: the first run's row)
    cell = page.locator(".video").first.locator("svg.marks path[role=graphics-symbol]").nth(10)
    cell.hover()
    tooltip = page.locator("#vg-tooltip-element")
    tooltip.wait_for(state="visible")
    text = tooltip.inner_text()
    assert "probability" in text and "top classes" in text and "event" in text
    page.screenshot(path=page.shots / "videos-hover.png", full_page=False)
    assert page.problems == []


@pytest.fixture(scope="module")
def told(project, tmp_path_factory):
    """A site whose workspace needs telling: params.yaml edited after the run, and a WSEL
    model that predicts background on every segment; seeds left to the default."""
    root = tmp_path_factory.mktemp("told") / "project"
    shutil.copytree(project, root)
    params = yaml.safe_load((root / "params.yaml").read_text())
    run = {"model": {**params["model"], "name": "ave"}, "train.epochs": 2}
    (root / "dvc.lock").write_text(
        yaml.safe_dump({"schema": "2.0", "stages": {"train_sel": {"params": {"params.yaml": run}}}})
    )
    labels = np.asarray(
        yaml.safe_load((root / "reports/predictions/sel.json").read_text())["labels"]
    )
    write_task(root, "wsel", labels, np.full_like(labels, 28))
    out = root.parent / "site"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        build(Site(collect()), out)
    return out


def test_the_site_tells_what_was_run_and_flags_what_misleads(page, told):
    page.goto((told / "index.html").as_uri())
    _charts(page)
    warning = page.locator("p.warning").inner_text()
    assert warning.startswith("workspace: params.yaml differs from dvc.lock")
    assert 'model.name (dvc.lock: "ave", params.yaml: "dpnet")' in warning
    assert "train.epochs (dvc.lock: 2, params.yaml: " in warning
    flags = page.locator("table.sortable td:has-text('degenerate')").all_inner_texts()
    assert "⚠ degenerate: predicts background on every test segment" in flags
    assert len(flags) < page.locator("table.sortable tr").count() - 1  # not every run
    page.screenshot(path=page.shots / "told-index.png", full_page=True)

    page.goto((told / "tables.html").as_uri())
    assert _charts(page) == 2  # a chart per metric of the tiny table
    links = page.locator("#contents a")
    assert links.all_inner_texts() == ["Replicate on the tiny store"]
    links.first.click()
    assert page.url.endswith("#tiny")
    assert "seed(s) 0, 1 (those run)" in page.locator("#tiny p.note").first.inner_text()
    page.screenshot(path=page.shots / "told-tables.png", full_page=True)

    page.goto((told / "videos.html").as_uri())
    _charts(page)
    assert (
        "workspace:wsel is degenerate: predicts background"
        in page.locator("p.warning").inner_text()
    )

    page.goto((told / "training.html").as_uri())
    _charts(page)
    ticks = page.eval_on_selector_all(
        "g[aria-label^='X-axis titled'] text", "ts => ts.map(t => t.textContent)"
    )
    epochs = [tick for tick in ticks if tick != "epoch"]
    assert epochs and all(re.fullmatch(r"\d+", tick) for tick in epochs), ticks
    # workspace:sel and workspace:wsel log the same curves: two dash patterns, two shapes
    dashes = page.eval_on_selector_all(
        "path[aria-roledescription='line mark']",
        "ps => ps.map(p => p.getAttribute('stroke-dasharray'))",
    )
    assert len(set(dashes)) >= 2, dashes
    page.screenshot(path=page.shots / "told-training.png", full_page=True)
    assert page.problems == []
