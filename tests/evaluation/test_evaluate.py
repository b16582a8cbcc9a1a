"""Evaluation of segment scores beside the naive strategies of seed 004 Table 1."""

import numpy as np
import pytest

from pipeline.evaluation.scoring import evaluate_scores, top_probabilities


def test_evaluate_scores_reports_model_and_naive_strategies():
    labels = np.array([[2, 2, 28, 28], [1, 1, 1, 1]])
    scores = np.full((2, 4, 29), -5.0)
    scores[0, :, 2] = [3, 3, 3, 3]  # predicts class 2 everywhere: background missed
    scores[1, :, 28] = [4, 4, 4, 4]  # predicts background everywhere...
    scores[1, :, 1] = [3, 3, 3, 3]  # ...but class 1 is its best event class
    video_probs = np.full((2, 29), 0.01)
    video_probs[0, 2] = 0.5
    video_probs[1, [1, 28]] = [0.3, 0.6]  # background is the argmax, class 1 the best event
    results = evaluate_scores(scores, video_probs, labels)
    assert results["model"]["accuracy"] == pytest.approx(2 / 8)
    assert results["gt_repeat"]["accuracy"] == pytest.approx(6 / 8)
    # model-repeat repeats the most probable event class (never background) of each video
    assert results["model_repeat"]["accuracy"] == pytest.approx(6 / 8)
    assert results["model_repeat"]["non_ave_recall"] == 0.0
    assert results["model"]["non_ave_recall"] == 0.0
    assert results["model"]["non_ave_precision"] == 0.0


def test_every_strategy_gets_bootstrap_bounds_around_its_value():
    rng = np.random.default_rng(0)
    labels = rng.choice([1, 2, 28], size=(30, 10))
    scores = rng.normal(size=(30, 10, 29))
    scores[np.arange(30)[:, None], np.arange(10), labels] += 1.5
    video_probs = np.full((30, 29), 1 / 29)
    results = evaluate_scores(scores, video_probs, labels, with_b2ilc=True, resamples=200)
    assert set(results) == {"model", "gt_repeat", "model_repeat", "model_b2ilc"}
    for metrics in results.values():
        for name in ("accuracy", "weighted_f1", "ave_f1"):
            assert metrics[f"{name}_ci_low"] <= metrics[name] <= metrics[f"{name}_ci_high"]
    # GT-repeat never predicts background: its non-AVE F1 is undefined in every resample
    assert results["gt_repeat"]["non_ave_f1_ci_low"] is None


def test_top_probabilities_are_the_softmax_of_the_highest_scores_most_probable_first():
    # one segment: logits log(1), log(2), log(5), log(2) -> softmax 0.1, 0.2, 0.5, 0.2
    scores = np.log(np.array([[[1.0, 2.0, 5.0, 2.0]]]))  # (1, 1, 4)
    top = top_probabilities(scores, k=3)
    assert top["model_top_classes"].tolist() == [[[2, 1, 3]]]  # ties keep class order
    assert top["model_top_probabilities"].tolist() == [[[0.5, 0.2, 0.2]]]
    large = top_probabilities(np.array([[[1000.0, 0.0]]]), k=2)  # no overflow
    assert large["model_top_probabilities"].tolist() == [[[1.0, 0.0]]]
