"""Tests for pipeline.data.synthetic: invariants of the synthetic AVEL task."""

import itertools
from pathlib import Path

import h5py
import numpy as np
import pytest

from pipeline.data import store, synthetic
from pipeline.data.synthetic import CONFUSABLE_PAIRS, generate_synthetic

BG = store.BACKGROUND
T = store.T
MIXING_OFF = {"audio_confusion": 0.0, "visual_confusion": 0.0, "shared_confusion": 0.0}


def _read(path: Path, key: str = store.FEATURE_KEY) -> np.ndarray:
    with h5py.File(path, "r") as h5:
        return h5[key][()]


def _arrays(root: Path) -> dict[str, np.ndarray]:
    out = {}
    for path in sorted(root.iterdir()):
        key = store.ORDER_KEY if path.name.endswith("_order.h5") else store.FEATURE_KEY
        out[path.name] = _read(path, key)
    return out


def _event_blocks(labels: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` of every contiguous foreground block of one video."""
    foreground = np.concatenate([[0], (labels != BG).astype(int), [0]])
    edges = np.flatnonzero(np.diff(foreground))
    return [(int(s), int(e)) for s, e in zip(edges[::2], edges[1::2], strict=True)]


@pytest.fixture(scope="module")
def mapped_store(tmp_path_factory) -> tuple[Path, dict]:
    """A small store with a 7x7 map, where the sound source location can be seen."""
    kwargs = {
        "n_train": 30,
        "n_val": 5,
        "n_test": 5,
        "n_background": 0,
        "seed": 3,
        "audio_dim": 8,
        "visual_dim": 32,
        "map_size": 7,
    }
    root = tmp_path_factory.mktemp("mapped") / "ave"
    generate_synthetic(root, **kwargs)
    return root, kwargs


# ----------------------------------------------------------------------- determinism


def test_same_seed_gives_byte_identical_arrays_in_every_file(
    tiny_store, tiny_store_kwargs, tmp_path
):
    generate_synthetic(tmp_path / "again", **tiny_store_kwargs)
    first, second = _arrays(tiny_store), _arrays(tmp_path / "again")
    assert sorted(first) == sorted(second)
    assert len(first) == 9  # audio, visual, labels, 3 orders, 3 noisy files
    for name in first:
        assert first[name].dtype == second[name].dtype, name
        assert first[name].shape == second[name].shape, name
        assert first[name].tobytes() == second[name].tobytes(), name


def test_different_seed_gives_different_data(tiny_store, tiny_store_kwargs, tmp_path):
    generate_synthetic(tmp_path / "other", **{**tiny_store_kwargs, "seed": 1})
    first, second = _arrays(tiny_store), _arrays(tmp_path / "other")
    for name in (store.AUDIO, store.VISUAL, store.AUDIO_NOISY, store.VISUAL_NOISY):
        assert first[name].shape == second[name].shape
        assert not np.array_equal(first[name], second[name]), name
    assert not np.array_equal(first[store.LABELS], second[store.LABELS])
    assert not np.array_equal(first["train_order.h5"], second["train_order.h5"])


def test_files_shapes_and_dtypes_follow_the_official_layout(tiny_store):
    arrays = _arrays(tiny_store)
    assert sorted(arrays) == sorted(
        [
            store.AUDIO,
            store.VISUAL,
            store.LABELS,
            *(store.order_file(s) for s in store.SPLITS),
            *store.NOISY_FILES,
        ]
    )
    assert arrays[store.AUDIO].shape == (60, 10, 6)
    assert arrays[store.VISUAL].shape == (60, 10, 3, 3, 8)
    assert arrays[store.LABELS].shape == (60, 10, 29)
    assert arrays[store.AUDIO_NOISY].shape == (5, 10, 6)
    assert arrays[store.VISUAL_NOISY].shape == (5, 10, 3, 3, 8)
    assert arrays[store.LABELS_NOISY].shape == (5, 29)
    for name in (store.AUDIO, store.VISUAL, store.AUDIO_NOISY, store.VISUAL_NOISY):
        assert arrays[name].dtype == np.float32, name
    assert [arrays[store.order_file(s)].size for s in store.SPLITS] == [40, 10, 10]


def test_no_background_files_when_n_background_is_zero(tiny_store_kwargs, tmp_path):
    generate_synthetic(tmp_path, **{**tiny_store_kwargs, "n_background": 0})
    for name in store.NOISY_FILES:
        assert not (tmp_path / name).exists()
    assert store.validate_store(tmp_path).n_background == 0


# --------------------------------------------------------------------------- events


def test_every_video_has_one_contiguous_event_of_at_least_two_segments(tiny_store):
    labels = store.segment_labels(tiny_store)
    for row in labels:
        blocks = _event_blocks(row)
        assert len(blocks) == 1, row
        start, end = blocks[0]
        assert end - start >= 2, row
        assert len(set(row[start:end])) == 1, row
        assert row[start] < BG


def test_full_videos_are_exactly_round_0664_of_each_split(tiny_store):
    labels = store.segment_labels(tiny_store)
    for split in store.SPLITS:
        order = store.split_order(tiny_store, split)
        full = int((labels[order] != BG).all(axis=1).sum())
        assert full == round(0.664 * len(order)), split
    # 40 -> 27, 10 -> 7: fixed numbers, so a change of the rule shows up here too
    assert (labels[store.split_order(tiny_store, "train")] != BG).all(axis=1).sum() == 27


def test_event_windows_full_count_and_partial_lengths():
    windows = synthetic._event_windows(np.random.default_rng(5), 300, 0.67)
    assert windows.shape == (300, 2)
    full = (windows[:, 0] == 0) & (windows[:, 1] == T)
    assert full.sum() == 201
    lengths = windows[~full, 1] - windows[~full, 0]
    assert lengths.min() >= 2
    assert lengths.max() <= 9
    assert (windows[:, 0] >= 0).all()
    assert (windows[:, 1] <= T).all()


def test_partial_windows_follow_the_real_annotations():
    windows = synthetic._event_windows(np.random.default_rng(6), 20000, 0.0)
    real = synthetic.AVE_PARTIAL_WINDOWS
    assert {tuple(w) for w in windows} <= set(real)
    total = sum(real.values())
    for window in [(0, 2), (5, 10), (3, 5)]:
        share = np.mean((windows[:, 0] == window[0]) & (windows[:, 1] == window[1]))
        assert share == pytest.approx(real[window] / total, abs=0.006), window


def test_classes_follow_the_real_class_prior_within_a_split(tiny_store):
    labels = store.segment_labels(tiny_store)
    prior = np.array(synthetic.AVE_CLASS_COUNTS) / sum(synthetic.AVE_CLASS_COUNTS)
    for split in store.SPLITS:
        rows = labels[store.split_order(tiny_store, split)]
        video_class = np.array([row[row != BG][0] for row in rows])
        counts = np.bincount(video_class, minlength=28)
        assert np.abs(counts - prior * len(rows)).max() < 1, split
    counts = np.bincount(synthetic._split_classes(np.random.default_rng(0), 4143))
    np.testing.assert_array_equal(counts, synthetic.AVE_CLASS_COUNTS)  # the whole of AVE


def test_the_real_statistics_are_those_of_the_release_annotations(ave_reference):
    from collections import Counter

    from pipeline.data.annotations import annotation_lines

    fields = [line.split("&") for _, line in annotation_lines(ave_reference / "Annotations.txt")]
    names = list(dict.fromkeys(f[0] for f in fields))
    assert tuple(Counter(f[0] for f in fields)[n] for n in names) == synthetic.AVE_CLASS_COUNTS
    windows = Counter((int(f[3]), int(f[4])) for f in fields)
    assert windows.pop((0, T)) == synthetic.AVE_FULL_VIDEOS
    assert windows.pop((0, 0)) == 1  # training row 26, the one empty event
    assert dict(windows) == synthetic.AVE_PARTIAL_WINDOWS
    pairs = [("Helicopter", "Fixed-wing aircraft, airplane"), ("Bus", "Truck")]
    pairs += [("Motorcycle", "Race car, auto racing")]
    pairs += [("Male speech, man speaking", "Female speech, woman speaking")]
    assert tuple((names.index(a), names.index(b)) for a, b in pairs) == synthetic.CONFUSABLE_PAIRS


def test_default_sizes_give_real_ave_foreground_share(tmp_path):
    generate_synthetic(tmp_path, audio_dim=4, visual_dim=4, map_size=1)
    labels = store.segment_labels(tmp_path)
    info = store.validate_store(tmp_path)
    assert info.splits == {"train": 560, "val": 80, "test": 402}  # test as in AVE
    assert info.n_background == 30
    for split in store.SPLITS:
        share = (labels[store.split_order(tmp_path, split)] != BG).mean()
        assert 0.78 <= share <= 0.87, (split, share)


# ---------------------------------------------------------------------- label rule


def test_label_is_foreground_only_where_class_is_audible_and_visible():
    video = synthetic.SyntheticVideo((3, 7), 5)
    video.audible[0] = 5  # audible only
    video.visible[1] = 5  # visible only
    video.audible[8], video.visible[8] = 2, 3  # one class heard, another seen
    video.audible[9], video.visible[9] = 4, 4  # both: foreground of class 4
    np.testing.assert_array_equal(video.labels(), [BG, BG, BG, 5, 5, 5, 5, BG, BG, 4])


def test_video_without_window_is_all_background():
    video = synthetic.SyntheticVideo(None, 4)
    np.testing.assert_array_equal(video.audible, np.full(T, -1))
    np.testing.assert_array_equal(video.labels(), np.full(T, BG))


def test_event_video_background_regions_never_make_a_foreground_segment():
    rng = np.random.default_rng(11)
    kinds = {"audible_only": 0, "visible_only": 0, "distractor": 0}
    windows = [(s, e) for s in range(T) for e in range(s + 2, T + 1)]
    for window, cls in itertools.product(windows, (0, 13, 27)):
        for _ in range(4):
            video = synthetic._event_video(rng, window, cls)
            expected = np.full(T, BG)
            expected[window[0] : window[1]] = cls
            np.testing.assert_array_equal(video.labels(), expected)
            outside = np.r_[0 : window[0], window[1] : T]
            a, v = video.audible[outside], video.visible[outside]
            assert not ((a >= 0) & (v >= 0)).any()  # never both in one background segment
            kinds["audible_only"] += int((a == cls).sum())
            kinds["visible_only"] += int((v == cls).sum())
            kinds["distractor"] += int(
                ((a >= 0) & (a != cls)).sum() + ((v >= 0) & (v != cls)).sum()
            )
    # background regions really do carry unimodal events of the class and distractors
    assert all(count > 50 for count in kinds.values()), kinds


def test_background_only_videos_never_co_occur():
    rng = np.random.default_rng(2)
    heard_and_seen = 0
    for _ in range(300):
        video = synthetic._background_video(rng)
        np.testing.assert_array_equal(video.labels(), np.full(T, BG))
        assert not video.onset.any()
        assert not video.offset.any()
        heard_and_seen += int((video.audible >= 0).any() and (video.visible >= 0).any())
    assert heard_and_seen > 250


def test_background_only_videos_are_labelled_background_in_the_store(tiny_store):
    labels = _read(tiny_store / store.LABELS_NOISY)
    assert labels.shape == (5, 29)
    np.testing.assert_array_equal(labels.argmax(axis=1), np.full(5, BG))
    np.testing.assert_array_equal(labels.sum(axis=1), np.ones(5))


# ----------------------------------------------------------------------- features


def test_audio_is_non_negative_and_sparse(tiny_store):
    for name in (store.AUDIO, store.AUDIO_NOISY):
        audio = _read(tiny_store / name)
        assert audio.min() >= 0.0, name
        assert (audio == 0).mean() > 0.4, name
        assert audio.max() > 0.5, name  # not all zero


def test_visual_is_non_negative(tiny_store):
    for name in (store.VISUAL, store.VISUAL_NOISY):
        visual = _read(tiny_store / name)
        assert visual.min() >= 0.0, name
        assert visual.max() > 0.5, name


def _world(seed: int, audio_dim: int, visual_dim: int) -> synthetic._World:
    """The world that ``generate_synthetic(seed=seed)`` draws first."""
    return synthetic._World(synthetic._streams(seed)[0], audio_dim, visual_dim)


RENDER = {
    "map_size": 7,
    "audio_strength": 1.6,
    "visual_strength": 3.2,
    "audio_noise": 0.35,
    "visual_noise": 0.35,
    "clutter_strength": 0.8,
    "border_strength": 0.6,
    "source_sigma": 0.8,
}


def test_foreground_audio_projects_more_on_its_class_prototype(mapped_store):
    root, kwargs = mapped_store
    world = _world(kwargs["seed"], 8, 32)
    audio = _read(root / store.AUDIO)  # (n, T, A)
    labels = store.segment_labels(root)
    video_class = np.array([row[row != BG][0] for row in labels])
    projection = np.einsum("nta,na->nt", audio, world.audio[video_class])
    foreground = labels != BG
    assert projection[foreground].mean() > 2 * projection[~foreground].mean()


def test_sound_source_is_spatially_localised_in_foreground_segments(mapped_store):
    root, kwargs = mapped_store
    world = _world(kwargs["seed"], 8, 32)
    visual = _read(root / store.VISUAL)  # (n, T, 7, 7, C)
    labels = store.segment_labels(root)
    video_class = np.array([row[row != BG][0] for row in labels])
    projection = np.einsum("nthwc,nc->nthw", visual, world.visual[video_class])
    spatial_var = projection.reshape(*projection.shape[:2], -1).var(axis=-1)  # (n, T)
    foreground = labels != BG
    # background segments include visible-only ones, so the margin is moderate
    assert spatial_var[foreground].mean() > 1.8 * spatial_var[~foreground].mean()


def test_peak_of_class_projection_sits_at_the_source_cell():
    world = _world(0, 16, 32)
    near = total = 0
    for seed in range(12):
        rng = np.random.default_rng(seed)
        cls = seed % 28
        video = synthetic.SyntheticVideo((0, T), cls)
        synthetic._place_objects(rng, video, 7, 1, MIXING_OFF)
        visual = synthetic._render_visual(rng, world, video, RENDER)
        projection = visual @ world.visual[cls]  # (T, 7, 7)
        for t in range(T):
            peak = np.unravel_index(projection[t].argmax(), (7, 7))
            near += max(abs(peak[0] - video.path[t, 0]), abs(peak[1] - video.path[t, 1])) <= 1
            total += 1
    assert near / total >= 0.85


def test_source_path_drifts_at_most_one_cell_per_segment_inside_the_map():
    path = synthetic._path(np.random.default_rng(4), 7)
    assert path.shape == (T, 2)
    assert np.abs(np.diff(path, axis=0)).max() <= 1
    assert path.min() >= 0
    assert path.max() <= 6
    prints = np.stack([synthetic.footprint(cell, 7) for cell in path])  # (T, 7, 7)
    peaks = np.array([np.unravel_index(p.argmax(), (7, 7)) for p in prints])
    np.testing.assert_array_equal(peaks, path)
    np.testing.assert_allclose(prints.max(axis=(1, 2)), 1.0)


def test_source_sigma_widens_only_the_sound_sources_footprint():
    cell = np.array([3, 3])
    wide = synthetic.footprint(cell, 7, 1.5)  # (7, 7)
    assert wide[3, 3] == 1.0
    np.testing.assert_allclose(wide[3, 4], np.exp(-1 / (2 * 1.5**2)))  # one cell away
    np.testing.assert_allclose(wide[5, 6], np.exp(-13 / (2 * 1.5**2)))
    world = _world(0, 8, 32)
    video = synthetic.SyntheticVideo((0, T), 5)
    synthetic._place_objects(np.random.default_rng(1), video, 7, 1, MIXING_OFF)
    quiet = {**RENDER, "visual_noise": 0.0, "clutter_strength": 0.0, "border_strength": 0.0}

    def source_mass(sigma: float) -> float:
        render = {**quiet, "source_sigma": sigma}
        visual = synthetic._render_visual(np.random.default_rng(0), world, video, render)
        return float((visual @ world.visual[5]).mean())  # the class over the whole map

    # the mean of the class over the map grows with the footprint's area, 2 pi sigma^2
    assert source_mass(1.6) > 2.5 * source_mass(0.8)


def test_confusable_pairs_are_more_similar_than_any_other_pair():
    for seed in range(3):
        world = _world(seed, 128, 512)
        for protos in (world.audio, world.visual):
            assert protos.shape[0] == 28
            assert protos.min() >= 0
            np.testing.assert_allclose(np.linalg.norm(protos, axis=1), 1.0)
            cosine = protos @ protos.T
            others = np.ones_like(cosine, dtype=bool)
            np.fill_diagonal(others, False)
            for a, b in CONFUSABLE_PAIRS:
                others[a, b] = others[b, a] = False
            pair_cosines = [cosine[a, b] for a, b in CONFUSABLE_PAIRS]
            assert min(pair_cosines) > 0.8
            assert min(pair_cosines) > cosine[others].max()


# ------------------------------------------------------------------------- borders


@pytest.mark.parametrize(
    ("window", "onset", "offset"),
    [((0, 10), None, None), ((0, 4), None, 3), ((6, 10), 6, None), ((2, 5), 2, 4), ((3, 5), 3, 4)],
)
def test_onset_and_offset_flags_sit_exactly_on_border_segments(window, onset, offset):
    video = synthetic.SyntheticVideo(window, 7)
    np.testing.assert_array_equal(np.flatnonzero(video.onset), [] if onset is None else [onset])
    np.testing.assert_array_equal(np.flatnonzero(video.offset), [] if offset is None else [offset])


def test_border_signature_changes_only_border_segments_in_both_modalities():
    world = _world(1, 32, 32)
    bordered = synthetic.SyntheticVideo((3, 7), 9)
    plain = synthetic.SyntheticVideo((3, 7), 9)
    plain.onset[:] = False
    plain.offset[:] = False
    renders = {
        "audio": lambda video: synthetic._render_audio(
            np.random.default_rng(0), world, video, RENDER
        ),
        "visual": lambda video: synthetic._render_visual(
            np.random.default_rng(0), world, video, {**RENDER, "map_size": 3}
        ),
    }
    for modality, render in renders.items():
        diff = render(bordered).astype(np.float64) - render(plain).astype(np.float64)
        changed = np.flatnonzero(np.abs(diff.reshape(T, -1)).sum(axis=1) > 0)
        np.testing.assert_array_equal(changed, [3, 6], err_msg=modality)
        assert diff.min() >= 0, modality  # the signature only adds


# ------------------------------------------------------------------ plan: confusers


def _plan(**mixing) -> synthetic.SyntheticPlan:
    return synthetic.plan_synthetic(
        np.random.default_rng(0),
        {"train": 300, "val": 0, "test": 0},
        20,
        7,
        0.67,
        2,
        {**MIXING_OFF, **mixing},
    )


def test_confusers_are_other_classes_with_weights_below_the_confusion():
    plan = _plan(audio_confusion=0.6, visual_confusion=0.3, shared_confusion=0.5)
    for video in [*plan.videos, *plan.background]:
        for modality, top in (("audio", 0.6), ("visual", 0.3)):
            other, weight = video.confusers[modality]
            assert other != video.cls
            assert 0 <= weight < top
    weights = np.array([v.confusers["audio"][1] for v in plan.videos])
    assert weights.max() > 0.55  # uniform over [0, 0.6)
    assert (weights > 0.5).mean() == pytest.approx(1 / 6, abs=0.06)


@pytest.mark.parametrize("shared", [0.0, 0.5, 1.0])
def test_shared_confusion_is_the_share_of_videos_with_one_confuser(shared):
    plan = _plan(audio_confusion=0.6, visual_confusion=0.6, shared_confusion=shared)
    same = np.mean(
        [v.confusers["audio"] == v.confusers["visual"] for v in [*plan.videos, *plan.background]]
    )
    assert same == pytest.approx(shared, abs=0.08)


def test_shared_confusion_changes_only_the_visual_confusers(tiny_store_kwargs, tmp_path):
    """Stores that differ only in ``shared_confusion`` are paired: the same classes, windows,
    paths, clutter and audio, byte for byte; only the look's confusers move."""
    kwargs = {**tiny_store_kwargs, "audio_confusion": 0.6, "visual_confusion": 0.6}
    plans = {
        shared: generate_synthetic(tmp_path / str(shared), **{**kwargs, "shared_confusion": shared})
        for shared in (0.0, 1.0)
    }
    apart, together = plans[0.0].videos, plans[1.0].videos
    for a, b in zip(apart, together, strict=True):
        assert (a.cls, a.confusers["audio"]) == (b.cls, b.confusers["audio"])
        np.testing.assert_array_equal(a.labels(), b.labels())
        np.testing.assert_array_equal(a.path, b.path)
        assert [(c, tuple(cell)) for c, cell in a.clutter] == [
            (c, tuple(cell)) for c, cell in b.clutter
        ]
        assert b.confusers["visual"] == b.confusers["audio"]
        assert a.confusers["visual"] != b.confusers["visual"]  # apart: the look's own draw
    files = {shared: _arrays(tmp_path / str(shared)) for shared in plans}
    assert set(files[0.0]) == set(files[1.0])
    for name, array in files[0.0].items():
        same = np.array_equal(array, files[1.0][name])
        assert same == ("visual" not in name), name


def test_confusion_weights_change_only_the_features(tiny_store_kwargs, tmp_path):
    """Stores that differ only in ``visual_confusion`` are paired: the same plan (confusers'
    classes, their draws ``u``) and the same audio, byte for byte; the look's confuser weight
    is ``u`` times the setting, so only the visual features move."""
    kwargs = {**tiny_store_kwargs, "audio_confusion": 0.6, "shared_confusion": 0.0}
    plans = {
        weight: generate_synthetic(tmp_path / str(weight), **{**kwargs, "visual_confusion": weight})
        for weight in (0.4, 0.8)
    }
    for a, b in zip(plans[0.4].videos, plans[0.8].videos, strict=True):
        assert a.confusers["audio"] == b.confusers["audio"]
        (class_a, weight_a), (class_b, weight_b) = a.confusers["visual"], b.confusers["visual"]
        assert class_a == class_b and weight_b == pytest.approx(2 * weight_a)
        np.testing.assert_array_equal(a.labels(), b.labels())
    files = {weight: _arrays(tmp_path / str(weight)) for weight in plans}
    for name, array in files[0.4].items():
        same = np.array_equal(array, files[0.8][name])
        assert same == ("visual" not in name), name


def test_zero_confusion_gives_pure_instances():
    world = _world(0, 16, 32)
    video = synthetic.SyntheticVideo((0, T), 3)
    video.confusers["audio"] = (5, 0.0)
    pure = synthetic._class_instances(np.random.default_rng(1), world.audio, video, "audio")
    video.confusers["audio"] = (5, 0.9)
    mixed = synthetic._class_instances(np.random.default_rng(1), world.audio, video, "audio")
    assert list(pure) == [3]
    # same jitter, so only the mixture differs: the 0.9-mixed instance leans to class 5
    assert pure[3] @ world.audio[3] > pure[3] @ world.audio[5]
    assert mixed[3] @ world.audio[5] > mixed[3] @ world.audio[3]


def test_clutter_objects_are_other_classes_inside_the_map():
    plan = _plan()
    for video in [*plan.videos, *plan.background]:
        assert len(video.clutter) == 2
        for cls, cell in video.clutter:
            assert cls != video.cls
            assert cell.min() >= 0 and cell.max() < 7


def test_clutter_is_silent_and_still():
    world = _world(0, 16, 32)
    video = synthetic.SyntheticVideo(None, 3)  # nothing heard or seen: only the clutter
    video.clutter = [(9, np.array([1, 5]))]
    render = {**RENDER, "visual_noise": 0.0}
    visual = synthetic._render_visual(np.random.default_rng(0), world, video, render)
    audio = synthetic._render_audio(np.random.default_rng(0), world, video, RENDER)
    projection = visual @ world.visual[9]  # (T, 7, 7)
    peaks = {np.unravel_index(p.argmax(), (7, 7)) for p in projection}
    assert peaks == {(1, 5)}
    assert np.allclose(visual, visual[0])  # still: the same in every segment
    assert (audio @ world.audio[9]).max() < 0.5 * world.audio[9].sum()


def test_returned_plan_is_the_store_and_is_deterministic(tiny_store, tiny_store_kwargs, tmp_path):
    plan = generate_synthetic(tmp_path / "again", **tiny_store_kwargs)
    labels = store.segment_labels(tiny_store)
    np.testing.assert_array_equal(np.stack([v.labels() for v in plan.videos]), labels)
    for split in store.SPLITS:
        np.testing.assert_array_equal(plan.orders[split], store.split_order(tiny_store, split))
    assert len(plan.background) == tiny_store_kwargs["n_background"]
    again = generate_synthetic(tmp_path / "third", **tiny_store_kwargs)
    for first, second in zip(plan.videos, again.videos, strict=True):
        np.testing.assert_array_equal(first.path, second.path)
        assert first.confusers == second.confusers


def test_params_yaml_generates_the_default_store():
    """The calibrated defaults are what ``dvc repro`` generates (and the bench measures)."""
    import inspect

    import yaml

    params = yaml.safe_load((Path(__file__).parents[2] / "params.yaml").read_text())
    defaults = {
        name: p.default
        for name, p in inspect.signature(generate_synthetic).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    assert params["data"]["synthetic"] == defaults
