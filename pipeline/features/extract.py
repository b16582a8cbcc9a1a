"""Feature recipes: a raw video to the per-second audio and visual features of the AVE store.

``ave``, the recipe of the AVE release (seed 004 §5.1): "VGG-19 pre-trained on ImageNet as
the visual feature extractor. 16 video frames are sampled per second and their features
are averaged to obtain a single representation per segment. [...] a VGG-like network
pre-trained on AudioSet as the audio feature extractor. Each 1s audio is transformed into a
log-Mel spectrogram before being fed into the network." Frames are resized to 224 x 224
(no crop: the whole picture, as the release's 7 x 7 maps cover it) and their pool5 maps
(:mod:`pipeline.features.vgg`) averaged per second: ``visual (T, 7, 7, 512)``; the audio is
the VGGish embedding of each second (:mod:`pipeline.features.vggish`): ``audio (T, 128)``.

``seed003``, the front end of seed 003 (§B, Table 1): frames at 10 per second (Table 1b:
100 frames for 10 s), resized to 128 x 171 and centre-cropped to 112 x 112 (the
preprocessing of torchvision's video models), through the video network; its
``512 x 7 x 7`` maps before the average pool, averaged per second: ``visual (T, 7, 7, 512)``.
The log-mel volume (``T x 100 x 80``) through the audio network, whose ten output positions
per second are averaged: ``audio (T, 512)``. Beside them, librosa's onset envelope and
onsets at 100 frames per second (§B): ``onset_envelope (T, 100)``, ``onsets (T, 100)``.

Both recipes work on clips of at most 10 s (:func:`pipeline.features.decode.read_clips`),
the input length of seed 003's networks and of an AVE video.
"""

import hashlib
import json
import os
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pipeline.errors import PipelineError
from pipeline.features import seed003, vgg, vggish
from pipeline.features.audio import (
    FRAMES_PER_SECOND,
    onsets,
    seed003_log,
    seed003_mel_power,
    vggish_examples,
)
from pipeline.features.decode import Clip, FrameSpec, read_clips
from pipeline.features.weights import load_weights
from pipeline.fetch import sha256_file

FRAME_BATCH = 32  # frames per VGG-19 forward pass


@dataclass(frozen=True)
class Recipe:
    """What a recipe produces and from which frames.

    Args:
        name: ``ave`` or ``seed003``.
        frames: frame rate and size given to the visual network.
        audio_dim: size of the audio feature of a segment.
        map_stride: input pixels per visual map cell.
        networks: the names of its networks (keys of ``data.weights``).
        extra: names of the per-segment outputs beyond ``audio`` and ``visual``.
    """

    name: str
    frames: FrameSpec
    audio_dim: int
    map_stride: int
    networks: tuple[str, ...]
    extra: tuple[str, ...] = ()

    @property
    def map_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of a segment's visual map."""
        height, width = self.frames.size
        return (height // self.map_stride, width // self.map_stride, 512)


RECIPES = {
    "ave": Recipe("ave", FrameSpec(16, 224, 224), 128, vgg.STRIDE, ("vgg19", "vggish")),
    "seed003": Recipe(
        "seed003",
        FrameSpec(10, 128, 171, crop=112),
        seed003.AUDIO_DIM,
        seed003.VIDEO_STRIDE,
        ("mc3_18", "seed003_audio"),
        extra=("onset_envelope", "onsets"),
    ),
}

# network name -> (constructor, state-dict prefixes of a head the feature network lacks)
NETWORKS = {
    "vgg19": (vgg.VGG19Trunk, vgg.HEAD_PREFIXES),
    "vggish": (vggish.VGGish, ()),
    "mc3_18": (seed003.VideoNet, seed003.VIDEO_HEAD_PREFIXES),
    "seed003_audio": (seed003.AudioNet, ()),
}


def pool_per_second(values: torch.Tensor, per_second: int) -> torch.Tensor:
    """Average consecutive groups of ``per_second`` rows: ``(T * k, ...)`` → ``(T, ...)``.

    Args:
        values: per-frame (or per-position) values, ``T * per_second`` rows.
        per_second: rows per one-second segment (16 VGG-19 frames, 10 mc3_18 frames, ...).
    """
    if values.shape[0] % per_second:
        raise PipelineError(
            f"pooling per second: expected a multiple of {per_second} rows, found {values.shape[0]}"
        )
    return values.reshape(-1, per_second, *values.shape[1:]).mean(dim=1)  # (T, ...)


def _images(frames: np.ndarray, mean, std, device: torch.device) -> torch.Tensor:
    """uint8 ``(N, H, W, 3)`` → normalised float ``(N, 3, H, W)`` on ``device``."""
    images = torch.from_numpy(frames).to(device).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(std, device=device).view(1, 3, 1, 1)
    return (images - mean) / std  # (N, 3, H, W)


class Extractor(ABC):
    """A recipe's networks on a device, turning video files into per-second features.

    Args:
        recipe: the recipe.
        networks: its networks by name, weights loaded.
        device: where they run.
    """

    def __init__(self, recipe: Recipe, networks: dict[str, nn.Module], device: torch.device):
        self.recipe = recipe
        self.networks = {name: net.to(device).eval() for name, net in networks.items()}
        self.device = device

    @abstractmethod
    def clip_features(self, clip: Clip) -> dict[str, np.ndarray]:
        """Per-segment features of one clip (see the recipes in the module docstring)."""

    @torch.inference_mode()
    def video_features(self, path: str | os.PathLike, limit: int | None = None) -> dict:
        """Per-segment features of a video file, its clips concatenated.

        Args:
            path: the video.
            limit: keep at most this many segments (default: all).

        Returns:
            ``{"audio": (T, A), "visual": (T, H, W, C), ...}`` float32 arrays (plus the
            recipe's ``extra`` outputs).

        Raises:
            VideoError: the video cannot be read (:func:`read_clips`).
        """
        parts = [
            self.clip_features(clip) for clip in read_clips(path, self.recipe.frames, 10, limit)
        ]
        return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


class AveExtractor(Extractor):
    """The AVE release's recipe: VGG-19 pool5 maps and VGGish embeddings (seed 004 §5.1)."""

    def _pool5(self, frames: np.ndarray) -> torch.Tensor:
        """VGG-19 pool5 maps of uint8 frames, :data:`FRAME_BATCH` at a time: ``(N, h, w, 512)``."""
        maps = []
        for start in range(0, len(frames), FRAME_BATCH):
            batch = frames[start : start + FRAME_BATCH]
            images = _images(batch, vgg.IMAGENET_MEAN, vgg.IMAGENET_STD, self.device)
            maps.append(self.networks["vgg19"](images).permute(0, 2, 3, 1))  # (b, h, w, 512)
        return torch.cat(maps)  # (N, h, w, 512)

    def clip_features(self, clip: Clip) -> dict[str, np.ndarray]:
        maps = self._pool5(clip.frames)  # (S * 16, h, w, 512)
        visual = pool_per_second(maps, self.recipe.frames.fps)  # (S, h, w, 512)
        examples = torch.from_numpy(vggish_examples(clip.audio, clip.segments)).to(self.device)
        audio = self.networks["vggish"](examples)  # (S, 128)
        return {"audio": audio.float().cpu().numpy(), "visual": visual.float().cpu().numpy()}


class Seed003Extractor(Extractor):
    """Seed 003's front end: the video and audio networks of Table 1, and onsets (§B)."""

    def clip_features(self, clip: Clip) -> dict[str, np.ndarray]:
        segments = clip.segments
        frames = _images(clip.frames, seed003.KINETICS_MEAN, seed003.KINETICS_STD, self.device)
        clip_maps = self.networks["mc3_18"](frames.permute(1, 0, 2, 3).unsqueeze(0))
        maps = clip_maps[0].permute(1, 2, 3, 0)  # (F, 7, 7, 512)
        visual = pool_per_second(maps, self.recipe.frames.fps)  # (S, 7, 7, 512)
        mel = seed003_mel_power(clip.audio, segments)  # (100 S, 80)
        log_mel = torch.from_numpy(seed003_log(mel)).to(self.device)  # (100 S, 80)
        volume = log_mel.reshape(1, segments, FRAMES_PER_SECOND, -1)  # (1, S, 100, 80)
        out = self.networks["seed003_audio"](volume)[0, :, :, :, 0]  # (512, S, 10)
        positions = out.permute(1, 2, 0).reshape(-1, out.shape[0])  # (S * 10, 512)
        audio = pool_per_second(positions, seed003.AUDIO_POSITIONS)  # (S, 512)
        envelope, is_onset = onsets(mel)  # (100 S,) each
        return {
            "audio": audio.float().cpu().numpy(),
            "visual": visual.float().cpu().numpy(),
            "onset_envelope": envelope.reshape(segments, FRAMES_PER_SECOND),
            "onsets": is_onset.reshape(segments, FRAMES_PER_SECOND),
        }


EXTRACTORS = {"ave": AveExtractor, "seed003": Seed003Extractor}


def build_extractor(recipe: Recipe, files: dict[str, Path], device: torch.device) -> Extractor:
    """The extractor of ``recipe`` with each network's weights loaded from ``files``.

    Args:
        recipe: a value of :data:`RECIPES`.
        files: weights file of each of ``recipe.networks``
            (:func:`pipeline.features.weights.weights_file`).
        device: where the networks run.
    """
    networks = {}
    for name in recipe.networks:
        build, head = NETWORKS[name]
        with torch.device("meta"):  # no random initialisation: the weights replace it
            network = build()
        networks[name] = load_weights(network, files[name], head)
    return EXTRACTORS[recipe.name](recipe, networks, device)


def fingerprint(recipe: Recipe, files: dict[str, Path]) -> str:
    """A short digest of the recipe and the weights' contents: features made alike share it.

    Args:
        recipe: the recipe.
        files: its weights files.

    Returns:
        12 hex digits.
    """
    content = {"recipe": asdict(recipe), "weights": {k: sha256_file(p) for k, p in files.items()}}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:12]
