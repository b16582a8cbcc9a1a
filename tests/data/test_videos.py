"""The ``videos`` source end to end: raw mp4s → features → validated store → prediction.

Tiny videos are written with PyAV; the networks are randomly initialised at their real
layer sizes, their weights saved to files the params name; the ``ave`` recipe samples
2 frames per second at 32 x 32 (pool5 maps of 1 x 1) instead of 16 at 224 x 224 to keep
the test fast. Nothing is downloaded.
"""

import contextlib
import dataclasses
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pipeline.config import paths
from pipeline.config.schema import validate_params
from pipeline.data import store, videos
from pipeline.data.annotations import class_names
from pipeline.data.videos import read_entries, read_splits, write_video_store
from pipeline.errors import PipelineError
from pipeline.features import extract, vgg, vggish
from pipeline.features.decode import FrameSpec
from pipeline.models import build_model
from pipeline.npz import save_npz
from pipeline.training.checkpoint import save_checkpoint
from stages import download, predict
from tests.media import truncate, write_video

ROOT = Path(__file__).resolve().parents[2]
ANNOTATIONS = """\
Category&VideoID&Quality&StartTime&EndTime
Dog&v0&good&0&10
Bird&silent&good&0&10
Cat&v1&good&2&6
Cat&broken&good&0&10
Dog&v2&good&0&0
Bird&short&good&1&3
Cat&gone&good&3&7
"""
SPLITS = {
    "trainSet.txt": ["v0", "silent", "broken"],
    "valSet.txt": ["v1", "short"],
    "testSet.txt": ["v2", "gone"],
}
BAD = {
    "silent": "has no audio stream",
    "broken": "cannot be opened by PyAV",
    "short": "expected at least 10 s, found 3 s",
    "gone": "file not found",
}


def _line(video_id: str) -> str:
    return next(line for line in ANNOTATIONS.splitlines() if f"&{video_id}&" in line)


@pytest.fixture(scope="module")
def videos_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("release")
    for i, video_id in enumerate(("v0", "v1", "v2")):
        write_video(root / "AVE" / f"{video_id}.mp4", 10.0, tone_hz=300.0 + 100 * i)
    write_video(root / "AVE" / "silent.mp4", 10.0, audio=False)
    truncate(write_video(root / "AVE" / "broken.mp4", 2.0))
    write_video(root / "AVE" / "short.mp4", 3.0)
    (root / "Annotations.txt").write_text(ANNOTATIONS)
    for name, ids in SPLITS.items():
        (root / name).write_text("".join(_line(v) + "\n" for v in ids))
    return root


def _params(videos_dir: Path, weights_dir: Path) -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    weights = {
        name: {"path": str(weights_dir / f"{name}.pth"), "sha256": None}
        for name in ("vgg19", "vggish")
    }
    params["data"].update(
        {
            "source": "videos",
            "videos_dir": str(videos_dir),
            "features": "ave",
            "device": "cpu",
            "weights": {**params["data"]["weights"], **weights},
            "download_dir": str(weights_dir / "downloads"),
        }
    )
    params["predict"].update({"device": "cpu", "output_dir": "out"})
    return params


def _with(params: dict, **data) -> dict:
    return {**params, "data": {**params["data"], **data}}


def _small_recipe(patch: pytest.MonkeyPatch) -> None:
    """The ``ave`` recipe at 2 frames per second of 32 x 32 (test speed)."""
    recipe = dataclasses.replace(extract.RECIPES["ave"], frames=FrameSpec(2, 32, 32))
    patch.setitem(extract.RECIPES, "ave", recipe)


@pytest.fixture(scope="module")
def built(tmp_path_factory, videos_dir) -> dict:
    """A workspace where the download stage ran with ``fail``, then with ``skip``.

    Returns the workspace, its params, the ``fail`` run's error and the ``skip`` run's stderr.
    """
    root = tmp_path_factory.mktemp("workspace")
    torch.manual_seed(0)
    for name, network in (("vgg19", vgg.VGG19Trunk()), ("vggish", vggish.VGGish())):
        torch.save(network.state_dict(), root / f"{name}.pth")
    params = _params(videos_dir, root)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        _small_recipe(patch)
        with pytest.raises(PipelineError) as failed:
            download.main(_with(params, on_bad_video="fail"))
        assert not paths.STORE.exists()  # nothing half-written
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            download.main(_with(params, on_bad_video="skip"))
    return {"root": root, "params": params, "fail": str(failed.value), "skip": stderr.getvalue()}


@pytest.fixture
def workspace(built, monkeypatch) -> dict:
    """The built workspace as the working directory, with the small recipe; its params."""
    monkeypatch.chdir(built["root"])
    _small_recipe(monkeypatch)
    return _with(built["params"], on_bad_video="skip")


def test_a_bad_video_fails_the_stage_by_name(built):
    assert "AVE/silent.mp4: has no audio stream" in built["fail"]
    assert "data.on_bad_video is fail" in built["fail"]


def test_skip_builds_a_valid_store_names_and_counts_the_skipped(built, workspace):
    for video_id, problem in BAD.items():
        assert f"skipping video {video_id}:" in built["skip"] and problem in built["skip"]
    assert "class indices differ from the full release's" in built["skip"]  # Bird is gone
    info = store.validate_store(paths.STORE, audio_dim=128, map_shape=(1, 1, 512))
    assert info.splits == {"train": 1, "val": 1, "test": 1} and info.n_videos == 3
    skipped = (paths.STORE / videos.SKIPPED).read_text().splitlines()
    assert [line.split("\t")[0] for line in skipped] == ["silent", "broken", "short", "gone"]
    metrics = json.loads(paths.DOWNLOAD_METRICS.read_text())
    assert metrics["skipped_videos"] == 4 and metrics["source"] == "videos"
    # rows: v0 Dog 0-10, v1 Cat 2-6, v2 Dog 0-0 (all background)
    labels = store.segment_labels(paths.STORE)
    expected = np.full((3, 10), store.BACKGROUND)
    expected[0], expected[1, 2:6] = 0, 1
    np.testing.assert_array_equal(labels, expected)
    assert class_names(paths.STORE)[:3] == ["Dog", "Cat", "2"]
    for split, rows in (("train", [0]), ("val", [1]), ("test", [2])):
        np.testing.assert_array_equal(store.split_order(paths.STORE, split), rows)
    audio = store.read_array(paths.STORE / store.AUDIO)
    assert audio.shape == (3, 10, 128) and (audio >= 0).all()


def test_a_rerun_resumes_from_the_cached_videos(workspace, monkeypatch):
    cached = sorted(Path(workspace["data"]["download_dir"]).glob("features/ave-*/*.npz"))
    assert [p.stem for p in cached] == ["v0", "v1", "v2"]
    stamps = [p.stat().st_mtime_ns for p in cached]
    decoded = []
    original = extract.Extractor.video_features

    def spy(self, path, limit=None):
        decoded.append(Path(path).stem)
        return original(self, path, limit)

    monkeypatch.setattr(extract.Extractor, "video_features", spy)
    download.main(workspace)
    assert sorted(decoded) == sorted(BAD)  # only the bad videos are tried again
    assert [p.stat().st_mtime_ns for p in cached] == stamps
    assert store.validate_store(paths.STORE).n_videos == 3


def _checkpoint(path: str, audio_dim: int = 128) -> None:
    kwargs = {"audio_dim": audio_dim, "visual_dim": 512, "n_regions": 1, "hidden": 8}
    kwargs |= {"attention_dim": 4, "classifier_hidden": 8}
    torch.manual_seed(0)
    model = build_model("ave", **kwargs)
    save_checkpoint(path, model.state_dict(), "ave", kwargs, epoch=1, val_accuracy=0.5)


def test_predict_writes_a_named_timeline_of_a_video_of_any_length(workspace, tmp_path):
    _checkpoint(workspace["predict"]["checkpoint"])
    # not 10 s; longer ones: tests/evaluation/test_predict.py
    video = write_video(tmp_path / "mine.mp4", 3.0)
    predict.main(workspace, str(video))
    result = json.loads(Path("out", "mine.json").read_text())
    assert result["segments"] == 3 and len(result["timeline"]) == 3
    assert result["classes"][:2] == ["Dog", "Cat"]
    assert result["classes"][28] == "background"
    for t, record in enumerate(result["timeline"]):
        assert (record["start_s"], record["end_s"]) == (t, t + 1)
        for row in ("prediction", "b2ilc"):
            assert record[row]["class"] == result["classes"][record[row]["index"]]
        assert sum(record["probabilities"].values()) == pytest.approx(1.0)
    assert Path("out", "mine_timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_predict_refuses_a_checkpoint_of_other_features(workspace, tmp_path):
    _checkpoint(workspace["predict"]["checkpoint"], audio_dim=6)
    video = write_video(tmp_path / "mine.mp4", 2.0)
    with pytest.raises(PipelineError, match=r"features ave \(audio_dim 128\), found audio_dim 6"):
        predict.main(workspace, str(video))


def test_predict_names_a_video_without_sound(workspace, videos_dir):
    _checkpoint(workspace["predict"]["checkpoint"])
    with pytest.raises(PipelineError, match=r"silent\.mp4: has no audio stream"):
        predict.main(workspace, str(videos_dir / "AVE" / "silent.mp4"))


# ---------------------------------------------------------------------------- splits


def test_order_files_serve_as_the_split(tmp_path):
    (tmp_path / "Annotations.txt").write_text(ANNOTATIONS)
    for split, rows in (("train", [0, 3]), ("val", [2]), ("test", [6])):
        store.write_array(tmp_path / store.order_file(split), store.ORDER_KEY, np.array(rows))
    splits = read_splits(tmp_path, read_entries(tmp_path))
    assert {k: v.tolist() for k, v in splits.items()} == {"train": [0, 3], "val": [2], "test": [6]}
    store.write_array(tmp_path / store.order_file("test"), store.ORDER_KEY, np.array([7]))
    with pytest.raises(PipelineError, match=r"test_order\.h5: expected row indices in \[0, 7\)"):
        read_splits(tmp_path, read_entries(tmp_path))


def test_split_lines_must_be_annotation_lines(tmp_path, videos_dir):
    for name in ("Annotations.txt", *SPLITS):
        shutil.copy(videos_dir / name, tmp_path / name)
    (tmp_path / "testSet.txt").write_text(_line("v0") + "\n")  # already in trainSet.txt
    with pytest.raises(PipelineError, match=r"testSet\.txt: line 1: expected a line of"):
        read_splits(tmp_path, read_entries(tmp_path))
    (tmp_path / "testSet.txt").unlink()
    with pytest.raises(PipelineError, match="expected the split files"):
        read_splits(tmp_path, read_entries(tmp_path))


def test_bad_params_are_named(workspace, tmp_path):
    with pytest.raises(PipelineError, match="data.on_bad_video: Input should be 'fail' or 'skip'"):
        validate_params(_with(workspace, on_bad_video="ignore"), ("data",))
    with pytest.raises(PipelineError, match="data.features: Input should be 'ave' or 'seed003'"):
        validate_params(_with(workspace, features="i3d"), ("data",))
    with pytest.raises(PipelineError, match="data.videos_dir: must name a directory"):
        validate_params(_with(workspace, videos_dir=None), ("data",))
    with pytest.raises(PipelineError, match="data.videos_dir: directory not found"):
        download.main(_with(workspace, videos_dir=str(tmp_path / "nowhere")))


# ---------------------------------------------------------------------- store writing


def _cached(cache: Path, video_id: str, rng, audio_dim: int = 512) -> dict:
    features = {
        "audio": rng.random((10, audio_dim), dtype=np.float32),
        "visual": rng.random((10, 7, 7, 512), dtype=np.float32),
        "onset_envelope": rng.random((10, 100), dtype=np.float32),
        "onsets": rng.random((10, 100)) > 0.9,
    }
    save_npz(cache / f"{video_id}.npz", features)
    return features


def test_a_seed003_store_holds_the_onsets(tmp_path):
    (tmp_path / "Annotations.txt").write_text(ANNOTATIONS)
    entries = read_entries(tmp_path)
    kept = [entries[0], entries[2]]  # v0 and v1
    rng = np.random.default_rng(0)
    cached = [_cached(tmp_path / "cache", entry.video_id, rng) for entry in kept]
    dest = tmp_path / "store"
    dest.mkdir()
    splits = {"train": np.array([0, 1]), "val": np.array([2]), "test": np.array([4])}
    recipe = extract.RECIPES["seed003"]
    write_video_store(dest, kept, [], splits, tmp_path / "cache", recipe)
    info = store.validate_store(dest, audio_dim=512, map_shape=(7, 7, 512))
    assert info.splits == {"train": 1, "val": 1, "test": 0}
    for key, name in videos.EXTRA_FILES.items():
        written = store.read_array(dest / name)
        assert written.shape == (2, 10, 100)
        np.testing.assert_array_equal(written, np.stack([c[key] for c in cached]))
    np.testing.assert_array_equal(
        store.read_array(dest / store.AUDIO), np.stack([c["audio"] for c in cached])
    )


def test_a_cached_file_of_other_shapes_is_named(tmp_path):
    (tmp_path / "Annotations.txt").write_text(ANNOTATIONS)
    entry = read_entries(tmp_path)[0]
    _cached(tmp_path / "cache", entry.video_id, np.random.default_rng(0), audio_dim=128)
    with pytest.raises(PipelineError, match=r"v0\.npz \[key 'audio'\]: expected shape \(10, 512\)"):
        write_video_store(
            tmp_path,
            [entry],
            [],
            {"train": np.array([0])},
            tmp_path / "cache",
            extract.RECIPES["seed003"],
        )
