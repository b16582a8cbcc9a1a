"""bench.error_split: the error shares and causes of hand-made cases, its plan, its errors."""

import json

import numpy as np
import pytest

from bench import error_split
from pipeline.data import store, synthetic


def test_the_shares_of_a_hand_computed_case():
    # background = 2; 2 videos x 4 segments = 8 segments
    labels = np.array([[0, 0, 2, 2], [1, 1, 1, 2]])
    predictions = np.array([[0, 1, 0, 2], [2, 0, 0, 1]])
    shares = error_split.split_errors(labels, predictions, background=2)
    assert shares["right"] == 2 / 8  # (0, 0) and (0, 3)
    assert shares["wrong class"] == 3 / 8  # (0, 1), (1, 1), (1, 2)
    assert shares["missed"] == 1 / 8  # (1, 0)
    assert shares["false alarm"] == 2 / 8  # (0, 2), (1, 3)
    # video 0: predicted events 0, 1, 0 -> 0, right; video 1: 0, 0, 1 -> 0, wrong
    assert shares["video class right"] == 0.5
    assert sum(shares[f] for f in error_split.FIELDS[:4]) == 1


def test_a_video_without_predicted_events_counts_as_wrong():
    shares = error_split.split_errors(np.array([[0, 0]]), np.array([[2, 2]]), background=2)
    assert (shares["missed"], shares["video class right"]) == (1.0, 0.0)


def test_the_workspace_file_is_read_and_a_missing_one_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=r"reports/predictions/sel.json: not found"):
        error_split.read_predictions("sel", None)
    (tmp_path / "reports/predictions").mkdir(parents=True)
    kept = {"labels": [[28, 3]], "model": [[3, 3]]}
    (tmp_path / "reports/predictions/sel.json").write_text(json.dumps(kept))
    assert error_split.read_predictions("sel", None) == kept
    with pytest.raises(SystemExit, match="error_split: HEAD:reports/predictions/sel.json"):
        error_split.read_predictions("sel", "HEAD")  # tmp_path is no git repository


def _video(cls: int, audio_confuser: int, visual_confuser: int) -> synthetic.SyntheticVideo:
    video = synthetic.SyntheticVideo((0, 10), cls)
    video.confusers = {"audio": (audio_confuser, 0.6), "visual": (visual_confuser, 0.1)}
    video.clutter = [(9, np.array([0, 0])), (10, np.array([1, 1]))]
    return video


def test_each_wrong_class_gets_its_cause_in_the_video():
    video = _video(cls=6, audio_confuser=7, visual_confuser=8)  # 6 pairs with 3 (helicopter)
    video.audible[9] = 11  # a distractor heard in the last segment
    assert [error_split.cause(video, c) for c in (7, 8, 3, 9, 10, 11, 12)] == [
        "confuser (audio)", "confuser (visual)", "confusable pair", "clutter", "clutter",
        "in the video", "unrelated",
    ]  # fmt: skip
    shared = _video(cls=6, audio_confuser=7, visual_confuser=7)
    assert error_split.cause(shared, 7) == "confuser (both)"


def test_the_causes_are_shares_of_all_segments_and_sum_to_the_wrong_class_share():
    videos = [_video(0, 1, 2), _video(4, 5, 5)]  # 4 pairs with 13
    labels = np.array([[0] * 5 + [28] * 5, [4] * 10])
    predictions = np.array([[1, 2, 9, 20, 28, 28, 28, 0, 28, 28], [13, 5, 4, 4, 4, 28, 4, 4, 4, 4]])
    causes = error_split.wrong_class_causes(labels, predictions, videos)
    # video 0: 1 audio, 2 visual confuser, 9 clutter, 20 unrelated (segment 7: a false
    # alarm); video 1: 13 its pair, 5 the confuser of both modalities
    assert causes == {
        "confuser (audio)": 1 / 20, "confuser (visual)": 1 / 20, "confuser (both)": 1 / 20,
        "confusable pair": 1 / 20, "clutter": 1 / 20, "in the video": 0, "unrelated": 1 / 20,
    }  # fmt: skip
    total = sum(causes.values())
    assert total == pytest.approx(error_split.split_errors(labels, predictions)["wrong class"])


def test_the_plan_is_the_one_the_store_was_generated_with(tiny_store, tiny_store_kwargs, tmp_path):
    plan = error_split.synthetic_plan(tiny_store_kwargs)
    generated = synthetic.generate_synthetic(tmp_path / "ave", **tiny_store_kwargs)
    for split, rows in generated.orders.items():
        np.testing.assert_array_equal(plan.orders[split], rows)
        np.testing.assert_array_equal(plan.orders[split], store.split_order(tiny_store, split))
    for ours, theirs in zip(plan.videos, generated.videos, strict=True):
        np.testing.assert_array_equal(ours.labels(), theirs.labels())
        assert (ours.cls, ours.confusers) == (theirs.cls, theirs.confusers)
        assert [c for c, _ in ours.clutter] == [c for c, _ in theirs.clutter]
    np.testing.assert_array_equal(
        np.stack([v.labels() for v in plan.videos]), store.segment_labels(tiny_store)
    )


def test_a_plan_with_an_unknown_key_or_a_real_store_is_refused(tmp_path, monkeypatch):
    with pytest.raises(SystemExit, match=r"data.synthetic: unknown keys \['n_trian'\]"):
        error_split.synthetic_plan({"n_trian": 5})
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("data: {source: local, synthetic: {}}\n")
    with pytest.raises(SystemExit, match="--causes needs data.source synthetic, found 'local'"):
        error_split.read_plan(None)
