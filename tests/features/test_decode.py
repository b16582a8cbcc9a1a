"""Decoding with PyAV: frame sampling times, segment counts, clips, and broken files."""

from pathlib import Path

import numpy as np
import pytest

from pipeline.features.decode import FrameSpec, VideoError, read_clips
from tests.media import FPS, SIZE, square_x, truncate, write_video

SPEC = FrameSpec(fps=4, height=SIZE, width=SIZE)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("videos")
    return {
        "three": write_video(root / "three.mp4", 3.0),
        "short_tail": write_video(root / "short_tail.mp4", 1.95),
        "silent": write_video(root / "silent.mp4", 2.0, audio=False),
        "truncated": truncate(write_video(root / "truncated.mp4", 2.0)),
        "blip": write_video(root / "blip.mp4", 0.5),
    }


def _square_left(image: np.ndarray) -> int:
    row = image[24 + 8, :, :].mean(axis=-1)  # a row through the square
    return int(np.flatnonzero(row > 128)[0])


def test_frames_are_the_pictures_shown_at_the_sampling_times(videos):
    (clip,) = read_clips(videos["three"], SPEC)
    assert clip.frames.shape == (3 * 4, SIZE, SIZE, 3)
    for k, image in enumerate(clip.frames):
        shown = int(np.floor((k + 0.5) / 4 * FPS))  # the frame on screen at (k + 0.5) / 4 s
        assert abs(_square_left(image) - square_x(shown)) <= 1  # codec blur


def test_audio_is_16_khz_mono_with_the_tone(videos):
    (clip,) = read_clips(videos["three"], SPEC)
    assert clip.audio.shape == (3 * 16000,) and clip.audio.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(clip.audio[16000:32000]))
    assert abs(int(spectrum.argmax()) - 440) <= 1  # 1 Hz bins over one second


def test_clips_window_and_limit(videos):
    clips = list(read_clips(videos["three"], SPEC, window=2))
    assert [(c.start, c.segments, len(c.frames)) for c in clips] == [(0, 2, 8), (2, 1, 4)]
    (first,) = read_clips(videos["three"], SPEC, limit=1)
    assert first.segments == 1 and len(first.frames) == 4


def test_centre_crop():
    spec = FrameSpec(fps=1, height=40, width=60, crop=32)
    assert spec.size == (32, 32)


def test_a_stream_ending_just_short_of_a_second_keeps_it(videos):
    (clip,) = read_clips(videos["short_tail"], SPEC)  # 1.95 s: within the 0.1 s slack
    assert clip.segments == 2 and len(clip.frames) == 8


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("silent", "has no audio stream"),
        ("truncated", "cannot be opened by PyAV"),
        ("blip", r"expected at least 1 s of video and audio, found 0\.5"),
    ],
)
def test_broken_videos_are_named(videos, name, message):
    with pytest.raises(VideoError, match=message) as info:
        list(read_clips(videos[name], SPEC))
    assert str(videos[name]) in str(info.value)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(VideoError, match=r"nothing\.mp4: file not found"):
        list(read_clips(tmp_path / "nothing.mp4", SPEC))
