"""Bootstrap CIs over videos, seed aggregation, paired differences (pipeline.evaluation.stats)."""

import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.evaluation.metrics import segment_metrics
from pipeline.evaluation.stats import (
    bootstrap_ci,
    confusion_metrics,
    paired_difference,
    seed_summary,
    video_confusions,
    video_weights,
)


def _case(seed: int = 0, n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.choice([0, 3, 5, 28], size=(n, 10))
    noise = rng.choice([0, 3, 28], size=(n, 10))
    return labels, np.where(rng.random((n, 10)) < 0.7, labels, noise)


def test_confusion_metrics_equal_segment_metrics():
    labels, predictions = _case()
    expected = segment_metrics(labels, predictions)
    found = confusion_metrics(video_confusions(labels, predictions, 29).sum(axis=0))
    for name, value in found.items():
        assert float(value) == pytest.approx(expected[name], abs=1e-12), name


def test_undefined_metrics_are_nan_where_segment_metrics_gives_none():
    labels = np.full((2, 10), 3)  # no background anywhere
    found = confusion_metrics(video_confusions(labels, labels, 29).sum(axis=0))
    assert segment_metrics(labels, labels)["non_ave_recall"] is None
    assert np.isnan(found["non_ave_recall"]) and np.isnan(found["non_ave_f1"])
    assert found["ave_f1"] == 1.0


def test_bootstrap_by_hand_two_videos():
    # video 0 all right, video 1 all wrong: a resample's accuracy is the share of draws of
    # video 0, i.e. 0, 0.5 or 1 with probabilities 1/4, 1/2, 1/4
    labels = np.array([[1] * 10, [2] * 10])
    predictions = np.array([[1] * 10, [3] * 10])
    ci = bootstrap_ci(labels, predictions, resamples=4000, seed=0)
    assert (ci["accuracy_ci_low"], ci["accuracy_ci_high"]) == (0.0, 1.0)
    weights = video_weights(2, 4000, np.random.default_rng(0))
    shares = np.bincount(weights[:, 0].astype(int), minlength=3) / 4000
    assert shares == pytest.approx([0.25, 0.5, 0.25], abs=0.03)


def test_bootstrap_resamples_videos_not_segments_and_is_seeded():
    labels, predictions = _case(n=200)
    a = bootstrap_ci(labels, predictions, resamples=500, seed=3)
    assert a == bootstrap_ci(labels, predictions, resamples=500, seed=3)
    accuracy = segment_metrics(labels, predictions)["accuracy"]
    assert a["accuracy_ci_low"] < accuracy < a["accuracy_ci_high"]
    # whole videos right or wrong: the video-level CI is wider than a segment-level one
    # would be, since the 10 segments of a video move together
    blocky = np.where((np.arange(200) % 3 == 0)[:, None], labels, (labels + 1) % 29)
    ci = bootstrap_ci(labels, blocky, resamples=2000, seed=0)
    width = ci["accuracy_ci_high"] - ci["accuracy_ci_low"]
    p = segment_metrics(labels, blocky)["accuracy"]
    segment_width = 2 * 1.96 * np.sqrt(p * (1 - p) / 2000)
    assert width > 2 * segment_width


def test_seed_summary_mean_std_and_a_ci_covering_seed_variance():
    labels, good = _case(1)
    _, bad = _case(2)
    bad = np.where(np.random.default_rng(5).random(bad.shape) < 0.3, 28, bad)
    runs = [good, bad]
    accuracies = [segment_metrics(labels, p)["accuracy"] for p in runs]
    summary = seed_summary(labels, runs, ["accuracy"], resamples=800)["accuracy"]
    assert summary["mean"] == pytest.approx(np.mean(accuracies))
    assert summary["std"] == pytest.approx(np.std(accuracies, ddof=1))
    assert summary["seeds"] == 2
    one = bootstrap_ci(labels, good, resamples=800)
    # with two different seeds the interval is wider than either seed's alone
    assert summary["ci_high"] - summary["ci_low"] > one["accuracy_ci_high"] - one["accuracy_ci_low"]
    assert seed_summary(labels, [good], resamples=50)["accuracy"]["std"] is None


def test_paired_difference_sign_and_pairing():
    labels, predictions = _case(3)
    better = np.where(np.arange(60)[:, None] < 20, labels, predictions)  # fixes 20 videos
    up = paired_difference(labels, [better], [predictions], resamples=500)["accuracy"]
    down = paired_difference(labels, [predictions], [better], resamples=500)["accuracy"]
    assert up["diff"] > 0 and up["ci_low"] > 0  # the improvement is certain
    assert down["diff"] == pytest.approx(-up["diff"]) and down["ci_high"] < 0
    same = paired_difference(labels, [predictions], [predictions], resamples=100)["accuracy"]
    assert same == {"diff": 0.0, "ci_low": 0.0, "ci_high": 0.0}


def test_errors_name_what_is_wrong():
    labels, predictions = _case()
    with pytest.raises(PipelineError, match="expected the predictions of at least one seed"):
        seed_summary(labels, [])
    with pytest.raises(PipelineError, match=r"expected as many seeds as the row \(2\), found 1"):
        paired_difference(labels, [predictions, predictions], [predictions])
    with pytest.raises(PipelineError, match="expected predictions of shape"):
        seed_summary(labels, [predictions[:3]])


def test_a_seed_that_never_predicts_background_counts_as_f1_zero_in_mean_and_ci():
    # seeds [good, good, never background]: the third seed's non-AVE F1 is undefined for
    # one run (segment_metrics gives None) and 0 in the tables (zero_division=0); it must
    # pull the mean and every resample that draws it down, not drop out of them
    labels, good = _case(4, n=80)
    never = np.where(good == 28, 0, good)
    assert segment_metrics(labels, never)["non_ave_f1"] is None
    f1 = segment_metrics(labels, good)["non_ave_f1"]
    three = seed_summary(labels, [good, good, never], ["non_ave_f1"], resamples=600)
    cell = three["non_ave_f1"]
    assert cell["mean"] == pytest.approx(2 * f1 / 3)
    assert cell["std"] == pytest.approx(np.std([f1, f1, 0.0], ddof=1))
    # 1 resample in 27 draws the never-background seed three times: F1 0 exactly, more
    # than the 2.5 % tail, so the CI reaches 0 (dropping the seed would keep it near f1)
    assert cell["ci_low"] == 0.0 and 2 * f1 / 3 < cell["ci_high"]
    alone = seed_summary(labels, [good, good, good], ["non_ave_f1"], resamples=600)
    assert alone["non_ave_f1"]["ci_low"] > f1 - 0.1
    # recall and precision of the never-background seed are 0, so its AVE side is defined
    zero = confusion_metrics(video_confusions(labels, never, 29).sum(axis=0), zero_division=0)
    assert (zero["non_ave_f1"], zero["non_ave_recall"], zero["non_ave_precision"]) == (0, 0, 0)


def test_zero_division_f1_is_the_harmonic_mean_wherever_that_is_defined():
    labels, predictions = _case(5)
    counts = video_confusions(labels, predictions, 29)  # (n, C*C)
    weights = video_weights(len(counts), 50, np.random.default_rng(1))
    strict = confusion_metrics(weights @ counts)
    zero = confusion_metrics(weights @ counts, zero_division=0)
    for name in strict:
        assert np.isfinite(strict[name]).all()
        assert zero[name] == pytest.approx(strict[name], abs=1e-12), name
    no_background = np.full((2, 10), 3)  # neither true nor predicted: 0, as scikit-learn
    found = confusion_metrics(
        video_confusions(no_background, no_background, 29).sum(axis=0), zero_division=0
    )
    assert found["non_ave_f1"] == 0.0 and found["ave_f1"] == 1.0


def test_paired_difference_pairs_seed_i_of_the_row_with_seed_i_of_the_reference():
    labels, good = _case(6)
    _, bad = _case(7)
    bad = np.where(np.random.default_rng(8).random(bad.shape) < 0.3, 28, bad)
    # the same seeds on both sides, paired: every resample's difference is exactly 0
    same = paired_difference(labels, [good, bad], [good, bad], ["accuracy"], resamples=300)
    assert same["accuracy"] == {"diff": 0.0, "ci_low": 0.0, "ci_high": 0.0}
    # the reference's seeds in the other order: seed 0 of the row meets seed 1 of the
    # reference; the means are equal but the paired resamples are not
    crossed = paired_difference(labels, [good, bad], [bad, good], ["accuracy"], resamples=300)
    assert crossed["accuracy"]["diff"] == pytest.approx(0.0, abs=1e-12)
    assert crossed["accuracy"]["ci_low"] < -0.01 and crossed["accuracy"]["ci_high"] > 0.01
