"""The video-timeline comparison as a paper figure: PDF and PNG at publication size.

The same Vega-Lite timeline as the Videos page (:func:`pipeline.site.charts.timeline_chart`,
seed 004's Fig. 4 style), one panel per chosen test video stacked vertically, rendered by
``vl-convert`` without a browser. Vega's pixel is a PostScript point in the PDF, so a figure
``width_in`` inches wide is ``72 * width_in`` pixels; the PNG is rendered at ``dpi``.
"""

from pathlib import Path

import vl_convert

from pipeline.errors import PipelineError
from pipeline.io import atomic_path
from pipeline.site import charts
from pipeline.site.videos import GROUND_TRUTH, Source, timeline_datasets, video_title

LABEL_MARGIN = 150  # points left of the plot for the sources' names


def figure_spec(
    videos: list[int], sources: list[Source], names: list[str] | None, width_in: float = 7.0
) -> dict:
    """One Vega-Lite spec: a timeline panel per video (test indices), ``width_in`` wide."""
    labels = sources[0].result.predictions["labels"]  # (n, T)
    rows = sources[0].result.predictions.get("rows")
    bad = [v for v in videos if not 0 <= v < len(labels)]
    if bad:
        raise PipelineError(f"--videos: expected test indices in [0, {len(labels)}), found {bad}")
    width = int(72 * width_in) - LABEL_MARGIN
    if width < 100:
        raise PipelineError(f"--width-in: expected at least 3.5 inches, found {width_in}")
    panels, datasets, config = [], {}, {}
    for video in videos:
        spec = charts.timeline_chart(
            [GROUND_TRUTH, *(s.label for s in sources)], names, labels.shape[1], False, width
        )
        config = spec.pop("config")
        spec.pop("$schema", None)
        for layer in spec["layer"]:
            layer["data"] = {"name": f"{layer['data']['name']}_{video}"}
        found = timeline_datasets(video, labels, sources, names)
        datasets.update({f"{name}_{video}": records for name, records in found.items()})
        row = video if rows is None else int(rows[video])
        title = video_title(video, row, labels[video], names)
        spec["title"] = {"text": title, "anchor": "start", "fontSize": 10}
        panels.append(spec)
    return {"vconcat": panels, "datasets": datasets, "config": config, "spacing": 12}


def export(spec: dict, path: Path, dpi: int = 300) -> list[Path]:
    """Write ``path`` with suffixes ``.pdf`` and ``.png`` (at ``dpi``); return both paths."""
    written = []
    for suffix, data in (
        (".pdf", vl_convert.vegalite_to_pdf(spec)),
        (".png", vl_convert.vegalite_to_png(spec, scale=dpi / 72)),
    ):
        target = path.with_suffix(suffix)
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            tmp.write_bytes(data)
        written.append(target)
    return written
