"""Timeline data of the Videos page and the figure, and the page's filters."""

import numpy as np

from pipeline.site.runs import Result
from pipeline.site.videos import Source, filters, spans, timeline_datasets, video_title


def _result(predictions, top=None, p=None) -> Result:
    kept = {"labels": np.zeros_like(predictions), "model": np.asarray(predictions)}
    if top is not None:
        kept["model_top_classes"], kept["model_top_probabilities"] = np.array(top), np.array(p)
    return Result(kept, {})


def test_spans_are_the_runs_of_one_event_class():
    found = spans("gt", np.array([28, 1, 1, 28, 2, 2, 2, 28, 28, 1]), None)
    assert [(s["t_mid"], s["class"]) for s in found] == [
        (2.0, "class 1"),
        (5.5, "class 2"),
        (9.5, "class 1"),
    ]
    assert spans("gt", np.full(4, 28), None) == []


def test_segments_carry_the_class_names_and_the_probability_of_the_predicted_class():
    names = [f"n{i}" for i in range(28)] + ["background"]
    labels = np.array([[0, 28]])
    top = [[[0, 5, 6], [7, 0, 28]]]  # segment 1 predicts 28, third most probable
    p = [[[0.9, 0.05, 0.05], [0.5, 0.3, 0.2]]]
    source = Source("run", _result(np.array([[0, 28]]), top, p))
    data = timeline_datasets(0, labels, [source], names)
    assert len(data["segments"]) == 4  # (ground truth + 1 run) x 2 segments
    mine = [s for s in data["segments"] if s["source"] == "run"]
    assert [s["class"] for s in mine] == ["n0", "background"]
    assert [s["p"] for s in mine] == [0.9, 0.2]
    assert mine[1]["top"] == "n7 0.50, n0 0.30, background 0.20"
    assert mine[1]["truth"] == "background"
    truth = [s for s in data["segments"] if s["source"] == "ground truth"]
    assert truth[0]["p"] is None  # the ground truth has no probability
    assert video_title(0, 42, labels[0], names) == "test video 0 (store row 42): n0"


def test_without_kept_probabilities_segments_have_none():
    source = Source("run", _result(np.array([[3, 3]])))
    data = timeline_datasets(0, np.array([[3, 3]]), [source], None)
    assert all(s["p"] is None and s["top"] is None for s in data["segments"])


def test_filters_by_hand():
    labels = np.array([[1, 1], [2, 2], [3, 3], [4, 4]])
    a = Source("a", _result(np.array([[1, 1], [2, 0], [0, 0], [4, 4]])))
    b = Source("b", _result(np.array([[1, 1], [2, 2], [0, 0], [4, 0]])))
    found = filters(labels, [a, b])
    assert found["all videos"] == [0, 1, 2, 3]
    assert found["models disagree"] == [1, 3]
    assert found["some model wrong"] == [1, 2, 3]
    assert found["every model wrong"] == [2]
    assert found["a wrong"] == [1, 2] and found["only a wrong"] == [1]
    assert found["only b wrong"] == [3]
