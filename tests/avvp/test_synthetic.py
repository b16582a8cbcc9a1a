"""The synthetic LLP generator: deterministic, labels consistent with features and statistics."""

import filecmp
from pathlib import Path

import numpy as np

from bench.llp_synthetic import distributions, total_variation
from pipeline.avvp import store as llp
from pipeline.avvp.statistics import measure_labels, reference_statistics, runs
from pipeline.avvp.synthetic import generate_llp, plan_llp
from tests.avvp.conftest import TINY_LLP_KWARGS


def test_same_seed_gives_identical_files(tiny_llp: Path, tmp_path: Path):
    generate_llp(tmp_path / "again", **TINY_LLP_KWARGS)
    for kind in (*llp.FEATURES, "."):
        compare = filecmp.dircmp(tiny_llp / kind, tmp_path / "again" / kind)
        assert not compare.diff_files and not compare.left_only and not compare.right_only
        _, mismatch, errors = filecmp.cmpfiles(
            tiny_llp / kind, tmp_path / "again" / kind, compare.common_files, shallow=False
        )
        assert not mismatch and not errors


def test_other_seed_differs():
    first = np.stack([v.events for v in plan_llp(20, seed=0)])
    second = np.stack([v.events for v in plan_llp(20, seed=1)])
    assert not np.array_equal(first, second)


def test_every_video_has_one_to_three_weak_labels_and_valid_events():
    for video in plan_llp(300, seed=3):
        assert 1 <= video.weak.sum() <= 3
        assert set(np.unique(video.weak)) <= {0, 1}
        for c in np.flatnonzero(video.events.any(axis=(0, 2))):
            audio, visual = video.events[:, c]
            if audio.any() and visual.any():  # an audio-visual class co-occurs somewhere
                assert (audio * visual).any()
        assert len(llp.video_id(video.filename)) == 11


def test_weak_and_dense_labels_disagree_at_the_real_rates():
    """The two annotation gaps of the real val and test labels (``annotation_gaps``) at
    their real rates, each within 4 binomial standard errors of the planned sample."""
    videos = plan_llp(6000, seed=0)
    weak = np.stack([v.weak for v in videos]) > 0  # (n, 25)
    present = np.stack([v.events for v in videos]).any(axis=-1)  # (n, 2, 25)
    gaps = reference_statistics()["annotation_gaps"]
    untagged = gaps["dense_without_weak"]
    n_weak = gaps["weak_labels"]
    n_dense = n_weak - gaps["weak_without_dense"] + sum(untagged.values())
    rates = {  # name: (real rate, planned count, planned total)
        "weak labels without dense event": (
            gaps["weak_without_dense"] / n_weak,
            (weak & ~present.any(axis=1)).sum(),
            weak.sum(),
        ),
        "dense (video, class) pairs without weak label": (
            sum(untagged.values()) / n_dense,
            (present.any(axis=1) & ~weak).sum(),
            present.any(axis=1).sum(),
        ),
    }
    for name, (real, count, total) in rates.items():
        assert abs(count / total - real) < 4 * np.sqrt(real * (1 - real) / total), name
    # the untagged pairs are audio-only, visual-only and audio-visual as in the real files
    audio, visual = present[:, 0] & ~weak, present[:, 1] & ~weak  # (n, 25) each
    planned = [(audio & ~visual).sum(), (visual & ~audio).sum(), (audio & visual).sum()]
    real = [untagged[kind] for kind in ("audio_only", "visual_only", "audio_visual")]
    assert total_variation(np.divide(planned, sum(planned)), np.divide(real, sum(real))) < 0.1


def test_features_carry_the_audible_and_visible_classes(tiny_llp: Path):
    """Audio of segments where a class is audible lies closer to that class than silence."""
    split = llp.load_split(tiny_llp, "test")
    features = split.features(range(len(split.names)))
    audio = features["vggish"]  # (n, T, A)
    audible = split.dense[:, 0].any(axis=1)  # (n, T)
    energy = audio.sum(axis=-1)
    assert energy[audible].mean() > 2 * energy[~audible].mean()
    frames = features["res152"].reshape(len(split.names), llp.T, 8, -1).sum(axis=(2, 3))
    visible = split.dense[:, 1].any(axis=1)
    assert frames[visible].mean() > 2 * frames[~visible].mean()


def test_runs_of_a_row():
    assert runs(np.array([1, 1, 0, 1, 0, 0, 1, 1, 1, 1])) == [2, 1, 4]
    assert runs(np.zeros(10)) == []
    assert runs(np.ones(10)) == [10]


def test_measure_labels_on_a_hand_made_case():
    weak = np.zeros((2, 25))
    weak[0, [0, 3]] = 1
    weak[1, 5] = 1
    dense = np.zeros((2, 2, 25, 10))
    dense[0, 0, 0, 0:2] = 1  # class 0: audio [0, 2) and [5, 6), visual [1, 4): co-occur
    dense[0, 0, 0, 5] = 1
    dense[0, 1, 0, 1:4] = 1
    dense[0, 1, 3, :] = 1  # class 3: visual only, full length
    dense[1, 0, 5, 9] = 1  # class 5: audio only, last segment
    stats = measure_labels(weak, weak, dense)
    assert stats["classes_per_video"] == [1, 1, 0]
    assert stats["modality"] == {"audio_only": 1, "visual_only": 1, "audio_visual": 1}
    assert stats["runs"]["audio"] == [1, 1, 0, 0, 0]
    assert stats["lengths"]["audio"] == [2, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    assert stats["lengths"]["visual"] == [0, 0, 1, 0, 0, 0, 0, 0, 0, 1]
    assert stats["lengths_by_runs"]["audio"][1] == [1, 1] + [0] * 8
    assert stats["cooccurrence"] == {"audio_visual": 1, "cooccurring": 1}


def test_planned_statistics_are_close_to_the_real_ones():
    """Each distribution within 0.06 total variation of the real one (bench: all <= 0.03)."""
    train, evaluated = plan_llp(1500, seed=0), plan_llp(600, seed=0, offset=1500)
    synthetic = measure_labels(
        np.stack([v.weak for v in train]),
        np.stack([v.weak for v in evaluated]),
        np.stack([v.events for v in evaluated]),
    )
    real = distributions(reference_statistics())
    for name, q in distributions(synthetic).items():
        assert total_variation(real[name], q) < 0.06, name


def test_cooccurrence_distribution_is_the_share_of_cooccurring_labels():
    stats = reference_statistics() | {"cooccurrence": {"audio_visual": 4, "cooccurring": 3}}
    shares = distributions(stats)["AV labels co-occurring"]
    np.testing.assert_allclose(shares, [0.75, 0.25])  # 3 of 4, not 2r/(1+r) = 6/7
    every = stats | {"cooccurrence": {"audio_visual": 4, "cooccurring": 4}}
    other = distributions(every)["AV labels co-occurring"]
    assert total_variation(shares, other) == 0.25
