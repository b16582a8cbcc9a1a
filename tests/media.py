"""Tiny test videos written with PyAV: a white square moving right on black, and a tone."""

from pathlib import Path

import av
import numpy as np

FPS = 24
SIZE = 64
SQUARE = 16
SAMPLE_RATE = 16000


def square_x(frame: int) -> int:
    """Left edge of the square in frame ``frame`` (two pixels per frame, wrapping)."""
    return (2 * frame) % (SIZE - SQUARE)


def _picture(frame: int) -> np.ndarray:
    image = np.zeros((SIZE, SIZE, 3), dtype=np.uint8)
    x = square_x(frame)
    image[24 : 24 + SQUARE, x : x + SQUARE] = 255
    return image


def write_video(path: Path, seconds: float, audio: bool = True, tone_hz: float = 440.0) -> Path:
    """Write an MPEG-4 video (AAC audio when ``audio``) of ``seconds`` seconds.

    Args:
        path: destination ``.mp4``.
        seconds: duration.
        audio: whether to add the tone's audio stream (default ``True``).
        tone_hz: frequency of the tone (default 440).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=FPS)
        video.width, video.height, video.pix_fmt = SIZE, SIZE, "yuv420p"
        sound = container.add_stream("aac", rate=SAMPLE_RATE) if audio else None
        if sound is not None:
            sound.layout = "mono"
        for i in range(round(seconds * FPS)):
            frame = av.VideoFrame.from_ndarray(_picture(i), format="rgb24")
            container.mux(video.encode(frame))
        if sound is not None:
            n = round(seconds * SAMPLE_RATE)
            tone = 0.5 * np.sin(2 * np.pi * tone_hz * np.arange(n) / SAMPLE_RATE)
            for start in range(0, n, 1024):
                chunk = tone[None, start : start + 1024].astype(np.float32)
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                frame.sample_rate, frame.pts = SAMPLE_RATE, start
                container.mux(sound.encode(frame))
            container.mux(sound.encode())
        container.mux(video.encode())
    return path


def truncate(path: Path, fraction: float = 0.5) -> Path:
    """Cut a file to ``fraction`` of its bytes (an interrupted copy)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path
