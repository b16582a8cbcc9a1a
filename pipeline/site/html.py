"""The site's HTML: one layout for every page, its navigation, its styles and scripts.

Every page loads ``vega.js`` (Vega, Vega-Lite and Vega-Embed, bundled by the
``vl-convert-python`` package at build time, so nothing is fetched when a page is viewed)
with a classic ``<script src>``, which browsers allow from ``file://``; the page's data is
inlined as JSON, since ``file://`` pages may not fetch files.
"""

import html
import json

PAGES = {
    "index.html": "Experiments",
    "tables.html": "Tables",
    "videos.html": "Videos",
    "per-class.html": "Per class",
    "training.html": "Training",
}

STYLE = """
html { background: white; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #222; }
nav { background: #263238; padding: 8px 16px; }
nav a { color: #cfd8dc; margin-right: 18px; text-decoration: none; }
nav a.here { color: white; font-weight: bold; }
main { padding: 8px 16px 32px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top; }
th.sortable { cursor: pointer; background: #eceff1; }
th.sortable::after { content: " \\2195"; color: #90a4ae; }
td.num { text-align: right; white-space: nowrap; }
.note { color: #555; max-width: 60em; }
.warning { color: #8a1c1c; background: #fdecea; padding: 4px 8px; max-width: 60em; }
#contents ol { columns: 2; max-width: 70em; }
.video { margin: 12px 0 18px; }
.video h3 { font-size: 13px; margin: 0 0 2px; }
.controls { margin: 8px 0; }
.controls > * { margin-right: 10px; }
figure img { max-width: 720px; }
"""

# Draws every chart of ``CHARTS`` (element id -> Vega-Lite spec) and makes the tables with
# class "sortable" sortable by a click on a header (numbers by their data-value).
COMMON_JS = """
(function () {
  for (const [id, spec] of Object.entries(window.CHARTS || {})) {
    vegaEmbed('#' + id, spec, {renderer: 'svg', actions: false});
  }
  for (const table of document.querySelectorAll('table.sortable')) {
    table.querySelectorAll('th').forEach(function (th, column) {
      th.classList.add('sortable');
      th.addEventListener('click', function () {
        const body = table.tBodies[0];
        const up = th.dataset.order !== 'up';
        th.dataset.order = up ? 'up' : 'down';
        const key = function (row) {
          const cell = row.cells[column];
          const value = cell.dataset.value;
          return value === undefined ? cell.textContent : parseFloat(value);
        };
        Array.from(body.rows).sort(function (a, b) {
          const x = key(a), y = key(b);
          const order = (typeof x === 'number' && typeof y === 'number')
            ? (isNaN(x) - isNaN(y)) || x - y : String(x).localeCompare(String(y));
          return up ? order : -order;
        }).forEach(function (row) { body.appendChild(row); });
      });
    });
  }
})();
"""


def inline_json(value) -> str:
    """JSON safe to put inside a ``<script>`` element."""
    return json.dumps(value, separators=(",", ":")).replace("</", "<\\/")


def page(name: str, title: str, body: str, charts: dict[str, dict], script: str = "") -> str:
    """A complete page: navigation, ``body``, the charts and an optional page script."""
    links = "".join(
        f'<a href="{href}"{" class=here" if href == name else ""}>{html.escape(label)}</a>'
        for href, label in PAGES.items()
    )
    extra = f"<script>{script}</script>" if script else ""
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)} · AVEL report</title><style>{STYLE}</style>"
        '<script src="vega.js"></script></head>\n'
        f"<body><nav>{links}</nav><main><h1>{html.escape(title)}</h1>\n{body}\n</main>\n"
        f"<script>window.CHARTS = {inline_json(charts)};</script>\n"
        f"<script>{COMMON_JS}</script>{extra}</body></html>\n"
    )


def chart_div(chart_id: str) -> str:
    return f'<div id="{chart_id}" class="chart"></div>'


def table(headers: list[str], rows: list[list[tuple[str, float | None]]], sortable=True) -> str:
    """An HTML table; each cell is (text, sort value or ``None``)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    lines = []
    for row in rows:
        cells = []
        for text, value in row:
            if value is None:
                cells.append(f"<td>{html.escape(text)}</td>")
            else:
                cells.append(f'<td class=num data-value="{value}">{html.escape(text)}</td>')
        lines.append("<tr>" + "".join(cells) + "</tr>")
    kind = ' class="sortable"' if sortable else ""
    return f"<table{kind}><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"
