"""Figures with class names: the evaluate stage's plots and a video's predicted timeline."""

import numpy as np

from pipeline.evaluation.plots import plot_confusion, plot_prediction, plot_timelines
from pipeline.evaluation.predict import default_class_names

PNG = b"\x89PNG\r\n\x1a\n"
NAMES = ["Church bell", "Male speech, man speaking", *map(str, range(2, 28)), "background"]


def test_evaluate_plots_take_class_names(tmp_path):
    labels = np.array([[0, 0, 28, 1], [28, 1, 1, 1]])
    predictions = np.array([[0, 1, 28, 1], [28, 28, 1, 1]])
    plot_timelines(labels, predictions, tmp_path / "timeline.png", "t", NAMES)
    plot_timelines(labels, predictions, tmp_path / "indices.png", "t")
    plot_confusion(np.eye(29), tmp_path / "confusion.png", "c", NAMES)
    for name in ("timeline.png", "indices.png", "confusion.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG


def test_prediction_timeline_of_a_long_video(tmp_path):
    t = 45  # too many segments for text in the cells: colours and a legend
    rows = {"prediction": np.arange(t) % 29, "b2ilc": np.full(t, 28)}
    plot_prediction(rows, np.linspace(0, 1, t), default_class_names(), tmp_path / "p.png", "v")
    assert (tmp_path / "p.png").read_bytes()[:8] == PNG
