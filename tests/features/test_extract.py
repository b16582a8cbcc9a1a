"""Recipes: pooling per second, store shapes, and both extractors on a tiny video."""

import dataclasses

import numpy as np
import pytest
import torch

from pipeline.errors import PipelineError
from pipeline.features import seed003, vgg, vggish
from pipeline.features.decode import FrameSpec
from pipeline.features.extract import (
    RECIPES,
    AveExtractor,
    Seed003Extractor,
    fingerprint,
    pool_per_second,
)
from tests.media import write_video

CPU = torch.device("cpu")


def test_pool_per_second_averages_consecutive_groups():
    frames = torch.arange(12, dtype=torch.float32).reshape(6, 2)  # 3 s at 2 frames per second
    pooled = pool_per_second(frames, 2)
    expected = torch.tensor([[1.0, 2.0], [5.0, 6.0], [9.0, 10.0]])
    torch.testing.assert_close(pooled, expected)
    maps = torch.ones(32, 7, 7, 512) * torch.arange(32).view(32, 1, 1, 1)  # 2 s at 16 fps
    per_second = pool_per_second(maps, 16)
    assert per_second.shape == (2, 7, 7, 512)
    assert per_second[0, 0, 0, 0] == 7.5 and per_second[1, 6, 6, 511] == 23.5


def test_pool_per_second_refuses_a_partial_second():
    with pytest.raises(PipelineError, match="expected a multiple of 16 rows, found 20"):
        pool_per_second(torch.zeros(20, 3), 16)


def test_recipes_give_the_store_shapes():
    assert (RECIPES["ave"].audio_dim, RECIPES["ave"].map_shape) == (128, (7, 7, 512))
    assert RECIPES["ave"].frames.fps == 16  # seed 004 §5.1
    assert (RECIPES["seed003"].audio_dim, RECIPES["seed003"].map_shape) == (512, (7, 7, 512))
    assert RECIPES["seed003"].frames.fps == 10  # Table 1b: 100 frames for 10 s


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4", 2.0)


def test_ave_extractor_on_a_tiny_video(video):
    recipe = dataclasses.replace(RECIPES["ave"], frames=FrameSpec(2, 64, 64))
    networks = {"vgg19": vgg.VGG19Trunk(), "vggish": vggish.VGGish()}
    features = AveExtractor(recipe, networks, CPU).video_features(video)
    assert features["audio"].shape == (2, 128) and (features["audio"] >= 0).all()
    assert features["visual"].shape == (2, 2, 2, 512) == (2, *recipe.map_shape)
    assert features["visual"].dtype == np.float32


def test_seed003_extractor_on_a_tiny_video(video):
    recipe = dataclasses.replace(RECIPES["seed003"], frames=FrameSpec(2, 40, 48, crop=32))
    networks = {"mc3_18": seed003.VideoNet(), "seed003_audio": seed003.AudioNet()}
    features = Seed003Extractor(recipe, networks, CPU).video_features(video, limit=1)
    assert features["audio"].shape == (1, 512)
    assert features["visual"].shape == (1, 2, 2, 512) == (1, *recipe.map_shape)
    assert features["onset_envelope"].shape == features["onsets"].shape == (1, 100)
    assert features["onsets"].dtype == bool


def test_fingerprint_follows_the_weights_and_the_recipe(tmp_path):
    first, second = tmp_path / "a.pth", tmp_path / "b.pth"
    first.write_bytes(b"one")
    second.write_bytes(b"two")
    recipe = RECIPES["ave"]
    base = fingerprint(recipe, {"vgg19": first, "vggish": first})
    assert base == fingerprint(recipe, {"vgg19": first, "vggish": first})
    assert base != fingerprint(recipe, {"vgg19": second, "vggish": first})
    other = dataclasses.replace(recipe, frames=FrameSpec(8, 224, 224))
    assert base != fingerprint(other, {"vgg19": first, "vggish": first})
