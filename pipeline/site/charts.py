"""The site's charts as Vega-Lite specifications, built with Altair.

Every chart but the video timeline reads one flat list of records (the ``data/<name>.json``
file of the site); :func:`dvc_template` turns its spec into a DVC plots template, so the
same file draws in ``dvc plots show``/``diff``, the VS Code extension and DVC Studio. The
timeline (seed 004, Fig. 4: one bar per source over the video's seconds, ground truth first,
each event span coloured by its class and named inside) reads two named datasets,
``segments`` and ``spans``, filled per video by the page or by :mod:`pipeline.site.figure`.
"""

import altair as alt
from matplotlib.colors import to_hex

from pipeline.evaluation.plots import _CLASS_COLOURS

BACKGROUND = 28
HEADLINE_TITLES = {
    "accuracy": "Accuracy",
    "weighted_f1": "Wt. F1",
    "non_ave_f1": "Non-AVE F1",
    "ave_f1": "AVE F1",
}
CURVE_TITLES = {
    "train_loss": "training loss",
    "val_accuracy": "val accuracy",
    "lr": "learning rate",
}


def class_label(index: int, names: list[str] | None) -> str:
    """A class's name, or ``class <i>`` (``background`` for 28) without names."""
    if names is not None:
        return names[index]
    return "background" if index == BACKGROUND else f"class {index}"


def class_colours(names: list[str] | None) -> tuple[list[str], list[str]]:
    """Domain (class labels in index order) and range: the event colours of
    ``pipeline.evaluation.plots``, background white (tab20 has greys among its event colours)."""
    labels = [class_label(i, names) for i in range(BACKGROUND + 1)]
    colours = [to_hex(colour) for colour in _CLASS_COLOURS.colors[:BACKGROUND]]
    return labels, [*colours, "#ffffff"]


def ink(colour: str) -> str:
    """Black or white, whichever reads better on ``colour`` (WCAG relative luminance)."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return "black" if luminance > 0.179 else "white"


def metrics_chart(records: list[dict]) -> dict:
    """Each run's headline metrics: mean and 95 % CI, one panel per metric.

    Records: ``run``, ``metric``, ``value``, ``ci_low``, ``ci_high`` (percent).
    """
    base = alt.Chart(alt.Data(values=records)).encode(
        y=alt.Y("run:N", title=None, sort=None),
    )
    points = base.mark_point(filled=True, size=50).encode(
        x=alt.X("value:Q", title="percent", scale=alt.Scale(zero=False)),
        tooltip=["run:N", "metric:N", "value:Q", "ci_low:Q", "ci_high:Q"],
    )
    rules = base.mark_rule().encode(x="ci_low:Q", x2="ci_high:Q")
    chart = alt.layer(rules, points).properties(width=170)
    order = list(HEADLINE_TITLES.values())
    return chart.facet(column=alt.Column("metric:N", title=None, sort=order)).to_dict()


def table_chart(records: list[dict], metric_title: str) -> dict:
    """A paper table's rows: our mean with its CI as bars, the paper's number as a tick
    (where the paper prints one for the metric).

    Records: ``row``, ``mean``, ``ci_low``, ``ci_high``, ``paper`` (percent or ``None``).
    """
    base = alt.Chart(alt.Data(values=records)).encode(x=alt.X("row:N", sort=None, title=None))
    bars = base.mark_bar(color="#4c72b0").encode(
        y=alt.Y("mean:Q", title=f"{metric_title} (%)"),
        tooltip=["row:N", "mean:Q", "ci_low:Q", "ci_high:Q", "paper:Q"],
    )
    errors = base.mark_rule(color="black").encode(y="ci_low:Q", y2="ci_high:Q")
    layers = [bars, errors]
    if any(record["paper"] is not None for record in records):  # the paper prints some
        paper = base.mark_tick(color="#dd8452", thickness=3, size=24).encode(
            y="paper:Q", tooltip=["row:N", "paper:Q"]
        )
        layers.append(paper)
    return alt.layer(*layers).properties(width=alt.Step(60), height=220).to_dict()


def per_class_chart(records: list[dict], classes: list[str]) -> dict:
    """Accuracy per true class, one bar per run side by side.

    Records: ``class``, ``run``, ``accuracy`` (percent), ``support`` (segments).
    """
    chart = alt.Chart(alt.Data(values=records)).mark_bar()
    return (
        chart.encode(
            x=alt.X("class:N", sort=classes, title=None),
            xOffset=alt.XOffset("run:N", sort=None),
            y=alt.Y("accuracy:Q", title="accuracy (%)", scale=alt.Scale(domain=[0, 100])),
            color=alt.Color("run:N", sort=None, legend=alt.Legend(orient="top")),
            tooltip=["class:N", "run:N", "accuracy:Q", "support:Q"],
        )
        .properties(width=alt.Step(8 * 1), height=220)
        .to_dict()
    )


def difference_chart(records: list[dict], classes: list[str]) -> dict:
    """Per-class accuracy difference to the reference run, with its paired 95 % CI.

    Records: ``comparison``, ``class``, ``diff``, ``ci_low``, ``ci_high`` (points).
    """
    data = alt.Data(values=records)
    base = alt.Chart(data).encode(x=alt.X("class:N", sort=classes, title=None))
    rules = base.mark_rule().encode(
        y=alt.Y("ci_low:Q", title="Δ accuracy (points)"), y2="ci_high:Q"
    )
    points = base.mark_point(filled=True, color="#c44e52").encode(
        y="diff:Q", tooltip=["comparison:N", "class:N", "diff:Q", "ci_low:Q", "ci_high:Q"]
    )
    zero = alt.Chart(data).mark_rule(color="grey").encode(y=alt.datum(0))
    chart = alt.layer(zero, rules, points).properties(width=alt.Step(16), height=160)
    header = alt.Header(labelAngle=0, labelAnchor="start", labelFontWeight="bold")
    facet = alt.Facet("comparison:N", title=None, sort=None, header=header)
    return chart.facet(facet=facet, columns=1).to_dict()


def confusion_chart(records: list[dict], classes: list[str]) -> dict:
    """Row-normalised confusion matrix of each run (rows: true class, columns: predicted).

    Records: ``run``, ``true``, ``predicted``, ``share`` (of the true class), ``count``.
    """
    chart = alt.Chart(alt.Data(values=records)).mark_rect()
    return (
        chart.encode(
            x=alt.X("predicted:N", sort=classes, title="predicted class"),
            y=alt.Y("true:N", sort=classes, title="true class"),
            color=alt.Color("share:Q", scale=alt.Scale(scheme="blues", domain=[0, 1])),
            tooltip=["run:N", "true:N", "predicted:N", "share:Q", "count:Q"],
        )
        .properties(width=alt.Step(11), height=alt.Step(11))
        .facet(facet=alt.Facet("run:N", title=None, sort=None), columns=2)
        .to_dict()
    )


def training_chart(records: list[dict]) -> dict:
    """dvclive's curves per epoch of every run, one panel per curve (own y scales).

    Epochs are whole numbers on the axis. Runs whose curves coincide stay distinguishable:
    each run has its own colour, dash pattern and point shape, and is drawn a little to the
    side of the epoch (at most a quarter of an epoch across all runs; the tooltip gives the
    epoch), so that identical curves show side by side instead of one over another.

    Records: ``run``, ``curve``, ``step``, ``value``.
    """
    legend = alt.Legend(orient="top", symbolStrokeWidth=2)
    chart = (
        alt.Chart(alt.Data(values=records))
        .transform_window(index="dense_rank()", sort=[alt.SortField("run")], groupby=["curve"])
        .transform_joinaggregate(runs="distinct(run)", groupby=["curve"])
        .transform_calculate(
            shown="datum.step + 0.25 * (datum.index - (datum.runs + 1) / 2) / datum.runs"
        )
        .mark_line(point=alt.OverlayMarkDef(filled=False, size=50), strokeWidth=1.5)
    )
    return (
        chart.encode(
            x=alt.X("shown:Q", title="epoch", axis=alt.Axis(tickMinStep=1, format="d")),
            y=alt.Y("value:Q", title=None),
            color=alt.Color("run:N", sort=None, legend=legend),
            strokeDash=alt.StrokeDash("run:N", sort=None, legend=legend),
            shape=alt.Shape("run:N", sort=None, legend=None),
            tooltip=["run:N", "curve:N", alt.Tooltip("step:Q", title="epoch"), "value:Q"],
        )
        .properties(width=260, height=200)
        .facet(column=alt.Column("curve:N", title=None, sort=list(CURVE_TITLES.values())))
        .resolve_scale(y="independent")
        .to_dict()
    )


def timeline_chart(
    rows: list[str],
    names: list[str] | None,
    segments: int,
    probabilities: bool = True,
    width: int = 520,
    row: int = 20,
) -> dict:
    """Seed 004 Fig. 4: per source a bar over the seconds, event spans coloured and named.

    The spec reads the named datasets ``segments`` (``source``, ``t``, ``t_end``, ``class``,
    ``p``, ``top``, ``truth``) and ``spans`` (``source``, ``t_mid``, ``class``, ``ink``) that the
    caller puts under the spec's top-level ``datasets``.

    Args:
        rows: the sources top to bottom (ground truth first).
        names: class names, or ``None``.
        segments: ``T``, segments (seconds) per video.
        probabilities: whether the tooltip shows ``p`` and ``top`` (default: ``True``).
        width: plot width in pixels (default: 520).
        row: height of one source's bar in pixels (default: 20).
    """
    domain, colours = class_colours(names)
    tooltip = [alt.Tooltip("source:N"), alt.Tooltip("second:N"), alt.Tooltip("class:N")]
    if probabilities:
        tooltip += [
            alt.Tooltip("p:Q", title="probability", format=".3f"),
            alt.Tooltip("top:N", title="top classes"),
        ]
    tooltip.append(alt.Tooltip("truth:N", title="ground truth"))
    y = alt.Y("source:N", sort=rows, title=None, axis=alt.Axis(labelLimit=240, ticks=False))
    x = alt.X(
        "t:Q",
        title="time (s)",
        scale=alt.Scale(domain=[0, segments], nice=False),
        axis=alt.Axis(values=list(range(segments + 1)), grid=False),
    )
    cells = (
        alt.Chart(alt.NamedData("segments"))
        .mark_rect(stroke="#9e9e9e", strokeWidth=0.6)
        .encode(
            x=x,
            x2="t_end:Q",
            y=y,
            color=alt.Color("class:N", scale=alt.Scale(domain=domain, range=colours), legend=None),
            tooltip=tooltip,
        )
    )
    text = (
        alt.Chart(alt.NamedData("spans"))
        .mark_text(fontSize=10)
        .encode(
            x="t_mid:Q",
            y=alt.Y("source:N", sort=rows),
            text="class:N",
            color=alt.Color("ink:N", scale=None),
        )
    )
    chart = alt.layer(cells, text).properties(width=width, height=alt.Step(row))
    return chart.configure_view(stroke=None).to_dict()


def dvc_template(spec: dict) -> dict:
    """The spec as a DVC plots template: its inline data replaced by DVC's placeholder."""
    template = dict(spec)
    template.pop("datasets", None)
    template["data"] = {"values": "<DVC_METRIC_DATA>"}
    return template
