"""Prediction on videos of any length: scoring windows, model length limits, timeline records."""

import numpy as np
import pytest
import torch

from pipeline.errors import PipelineError
from pipeline.evaluation.predict import (
    check_model_length,
    default_class_names,
    segment_scores,
    timeline,
    window_starts,
)
from pipeline.models import build_model
from pipeline.models.base import AVELModel
from stages import predict

CPU = torch.device("cpu")


class _Echo(AVELModel):
    """Scores class ``audio[..., 0]`` for each segment; records each window's length."""

    def __init__(self, needs_maps: bool) -> None:
        super().__init__()
        self.needs_maps = needs_maps
        self.windows: list[tuple[int, tuple]] = []

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        self.windows.append((audio.shape[1], tuple(visual.shape[2:])))
        return torch.nn.functional.one_hot(audio[..., 0].long(), 29).float()  # (B, T, 29)


@pytest.mark.parametrize(
    ("segments", "starts"),
    [(1, [0]), (7, [0]), (10, [0]), (11, [0, 1]), (20, [0, 10]), (23, [0, 10, 13])],
)
def test_window_starts(segments, starts):
    assert window_starts(segments) == starts


@pytest.mark.parametrize("needs_maps", [True, False])
def test_segment_scores_stitch_windows_of_ten(needs_maps):
    classes = np.arange(23) % 29  # segment t "is" class t
    audio = np.stack([classes, np.zeros(23)], axis=1).astype(np.float32)  # (23, 2)
    visual = np.ones((23, 3, 3, 4), dtype=np.float32)
    model = _Echo(needs_maps)
    scores = segment_scores(model, audio, visual, CPU)
    assert scores.shape == (23, 29)
    np.testing.assert_array_equal(scores.argmax(axis=1), classes)
    visual_shape = (3, 3, 4) if needs_maps else (4,)
    assert model.windows == [(10, visual_shape)] * 3  # [0, 10), [10, 20), [13, 23)


def test_every_model_but_edrnet_takes_short_videos():
    dpnet = build_model("dpnet", audio_dim=6, visual_dim=8, hidden=8, blocks=1).eval()
    check_model_length(dpnet, 1, "clip.mp4")
    scores = segment_scores(
        dpnet, np.zeros((3, 6), np.float32), np.zeros((3, 3, 3, 8), np.float32), CPU
    )
    assert scores.shape == (3, 29)
    edrnet = build_model(
        "edrnet", audio_dim=6, visual_dim=8, hidden=8
    ).eval()  # 4 layers of kernel 3: 10 -> 2
    with pytest.raises(PipelineError, match=r"clip\.mp4: expected at least 9 one-second segments"):
        check_model_length(edrnet, 5, "clip.mp4")
    check_model_length(edrnet, 9, "clip.mp4")


def test_timeline_records_classes_probabilities_and_b2ilc():
    names = default_class_names()
    scores = np.full((4, 29), -10.0, dtype=np.float32)
    for t, c in enumerate([28, 3, 5, 3]):  # background, then a 3-segment run 3, 5, 3
        scores[t, c] = 0.0
    rows, probabilities, records = timeline(scores, names, with_b2ilc=True)
    np.testing.assert_array_equal(rows["prediction"], [28, 3, 5, 3])
    np.testing.assert_array_equal(rows["b2ilc"], [28, 3, 3, 3])  # witness rate 2/3 > 0.5
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert records[0]["prediction"] == {
        "index": 28,
        "class": "background",
        "probability": pytest.approx(1 / (1 + 28 * np.exp(-10.0))),
    }
    assert records[2]["b2ilc"]["class"] == "3" and records[2]["prediction"]["class"] == "5"
    assert (records[3]["start_s"], records[3]["end_s"]) == (3, 4)
    rows, _, records = timeline(scores, names, with_b2ilc=False)
    assert set(rows) == {"prediction"} and "b2ilc" not in records[0]


def test_the_command_needs_a_video():
    with pytest.raises(PipelineError, match=r"usage: python -m stages\.predict PATH/TO/VIDEO\.mp4"):
        predict.main({}, "")
