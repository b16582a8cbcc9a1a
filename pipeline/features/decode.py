"""Decoding a video with PyAV into one-second segments of sampled frames and 16 kHz audio.

One demuxing pass decodes both streams. Frames are sampled at ``fps`` per second at the
centre of each sampling interval: frame ``k`` of the output is the picture shown at time
``(k + 0.5) / fps`` (the last decoded frame whose timestamp is not later), resized (and
centre-cropped) with libswscale's bilinear filter. Audio is mixed down to mono and
resampled to 16 kHz with libswresample. Time 0 is the container's start; audio that starts
later is preceded by silence.

Segments are whole seconds covered by both streams, with :data:`TOLERANCE_S` of slack: a
video whose streams end within 0.1 s of the next whole second keeps that second, with its
last frame held and its audio padded with silence. :func:`read_clips` yields the segments in
clips of at most ``window`` seconds, so that a long video never sits in memory whole.
"""

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from pipeline.errors import PipelineError
from pipeline.features.audio import SAMPLE_RATE

TOLERANCE_S = 0.1


class VideoError(PipelineError):
    """A video that cannot give features: missing, unreadable, without a stream, too short."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)
        self.problem = problem


@dataclass(frozen=True)
class FrameSpec:
    """How frames are sampled and sized.

    Args:
        fps: frames sampled per second.
        height: height after resizing.
        width: width after resizing.
        crop: side of the square centre crop after resizing, or ``None`` for no crop.
    """

    fps: int
    height: int
    width: int
    crop: int | None = None

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` of the frames handed to the network."""
        return (self.crop, self.crop) if self.crop else (self.height, self.width)


@dataclass(frozen=True)
class Clip:
    """Consecutive one-second segments of a video.

    Args:
        start: index of the first segment (its start, in seconds).
        frames: ``(S * fps, H, W, 3)`` uint8 RGB frames.
        audio: ``(S * 16000,)`` float32 mono audio.
    """

    start: int
    frames: np.ndarray
    audio: np.ndarray

    @property
    def segments(self) -> int:
        """Number of segments ``S``."""
        return self.audio.size // SAMPLE_RATE


class _Segments:
    """Frames and audio of one video, gathered into whole segments as they are decoded."""

    def __init__(self, spec: FrameSpec, origin: float, frame_s: float, limit: int | None):
        self.spec, self.origin, self.frame_s = spec, origin, frame_s
        self.limit = math.inf if limit is None else limit
        self.frames: list[np.ndarray] = []  # sampled frames from segment `self.start` on
        self.sampled = 0  # frames sampled so far
        self.last: tuple[av.VideoFrame, np.ndarray | None] | None = None
        self.video_end = 0.0
        self.audio: list[np.ndarray] = []  # audio from segment `self.start` on
        self.samples = 0  # audio samples so far
        self.audio_start: float | None = None
        self.skip = 0  # samples before time 0, still to drop
        self.start = 0  # first segment not yet yielded
        self.resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)

    def _convert(self, frame: av.VideoFrame) -> np.ndarray:
        spec = self.spec
        image = frame.to_ndarray(
            format="rgb24", width=spec.width, height=spec.height, interpolation="BILINEAR"
        )  # (h, w, 3)
        if spec.crop:
            top, left = (spec.height - spec.crop) // 2, (spec.width - spec.crop) // 2
            image = image[top : top + spec.crop, left : left + spec.crop]
        return np.ascontiguousarray(image)

    def _last_image(self) -> np.ndarray:
        frame, image = self.last
        if image is None:
            image = self._convert(frame)
            self.last = (frame, image)
        return image

    def _sample_until(self, time: float) -> None:
        """Sample the current frame for every sampling time before ``time``."""
        fps = self.spec.fps
        while self.sampled < self.limit * fps and (self.sampled + 0.5) / fps < time:
            self.frames.append(self._last_image())
            self.sampled += 1

    def add_video(self, frame: av.VideoFrame) -> None:
        time = self.video_end if frame.time is None else frame.time - self.origin
        if self.last is None:  # the first frame also stands for the times before it
            self.last = (frame, None)
        self._sample_until(time)
        self.last = (frame, None)
        self.video_end = max(self.video_end, time + self.frame_s)

    def add_audio(self, frame: av.AudioFrame) -> None:
        if self.audio_start is None:
            self.audio_start = 0.0 if frame.time is None else frame.time - self.origin
            lead = round(self.audio_start * SAMPLE_RATE)
            self.skip = max(0, -lead)
            if lead > 0:
                self._append_audio(np.zeros(lead, dtype=np.float32))
        for out in self.resampler.resample(frame):
            self._append_audio(out.to_ndarray().reshape(-1))

    def _append_audio(self, samples: np.ndarray) -> None:
        if self.skip:
            dropped = min(self.skip, samples.size)
            samples, self.skip = samples[dropped:], self.skip - dropped
        self.audio.append(samples.astype(np.float32, copy=False))
        self.samples += samples.size

    def complete(self) -> int:
        """Segments for which every frame and sample is known."""
        whole = min(self.sampled // self.spec.fps, self.samples // SAMPLE_RATE)
        return int(min(whole, self.limit))

    def clips(self, end: int, window: int) -> Iterator[Clip]:
        """Yield segments ``[self.start, end)`` in clips of ``window`` (the last may be short)."""
        fps = self.spec.fps
        audio = np.concatenate(self.audio) if self.audio else np.zeros(0, np.float32)
        while self.start < end:
            count = min(window, end - self.start)
            frames = np.stack(self.frames[: count * fps])  # (S * fps, H, W, 3)
            yield Clip(self.start, frames, audio[: count * SAMPLE_RATE])
            self.frames = self.frames[count * fps :]
            audio = audio[count * SAMPLE_RATE :]
            self.start += count
        self.audio = [audio]

    def finish(self, path: Path) -> int:
        """Close the streams: the number of segments of the video, its tail filled in."""
        for out in self.resampler.resample(None):
            self._append_audio(out.to_ndarray().reshape(-1))
        covered = min(self.video_end, self.samples / SAMPLE_RATE)
        total = int(min(math.floor(covered + TOLERANCE_S), self.limit))
        if total < 1:
            raise VideoError(
                path, f"expected at least 1 s of video and audio, found {covered:.2f} s"
            )
        self._sample_until(total)
        self.frames = self.frames[: (total - self.start) * self.spec.fps]
        missing = total * SAMPLE_RATE - self.samples
        if missing > 0:
            self._append_audio(np.zeros(missing, dtype=np.float32))
        return total


def _streams(container: av.container.InputContainer, path: Path):
    if not container.streams.video:
        raise VideoError(path, "has no video stream")
    if not container.streams.audio:
        raise VideoError(path, "has no audio stream (the features need the sound track)")
    return container.streams.video[0], container.streams.audio[0]


def read_clips(
    path: str | os.PathLike, spec: FrameSpec, window: int = 10, limit: int | None = None
) -> Iterator[Clip]:
    """Decode ``path`` into clips of at most ``window`` one-second segments.

    Args:
        path: the video file.
        spec: frame rate and size of the sampled frames.
        window: segments per clip (default 10, the length of an AVE video).
        limit: stop after this many segments (default: the whole video).

    Raises:
        VideoError: a missing file, a file PyAV cannot open or decode, a missing video or
            audio stream, or less than one second of video and audio.
    """
    path = Path(path)
    if not path.is_file():
        raise VideoError(path, "file not found")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as err:
        raise VideoError(path, f"cannot be opened by PyAV ({err.strerror})") from None
    with container:
        video, audio = _streams(container, path)
        rate = video.average_rate or video.guessed_rate or spec.fps
        origin = 0.0 if container.start_time is None else container.start_time / av.time_base
        segments = _Segments(spec, origin, 1.0 / float(rate), limit)
        try:
            for packet in container.demux(video, audio):
                for frame in packet.decode():
                    if packet.stream.index == video.index:
                        segments.add_video(frame)
                    else:
                        segments.add_audio(frame)
                done = segments.complete()
                if done - segments.start >= window:
                    yield from segments.clips(done - (done - segments.start) % window, window)
                if done >= segments.limit:
                    break
        except av.error.FFmpegError as err:
            at = f"{segments.video_end:.2f} s"
            raise VideoError(path, f"cannot be decoded after {at} ({err.strerror})") from None
        yield from segments.clips(segments.finish(path), window)
