"""Cost of feature extraction from raw video, per 10-second video, for each recipe.

For each recipe (``ave``: VGG-19 pool5 at 16 frames per second + VGGish; ``seed003``: the
video and audio networks of seed 003 Table 1 + onsets) at its real frame rate and size, with
randomly initialised networks (the cost does not depend on the weights), it reports:

* ``decode s``: decoding and sampling the frames and the 16 kHz audio (PyAV);
* ``features s``: the whole :meth:`Extractor.video_features` call (decoding included);
* ``videos/h``: 3600 / ``features s``, and the hours for the 4143 videos of AVE.

The first call of each recipe is a warm-up and is not timed (it loads librosa, allocates).
The input is a synthetic video (a moving square and a tone, 320 x 240, 30 frames per second)
unless ``--video`` names one.

Usage, from the repository root::

    python -m bench.features [--video PATH] [--recipes ave seed003] [--device auto] [--repeat 2]
"""

import argparse
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

from pipeline.device import resolve_device
from pipeline.features.decode import read_clips
from pipeline.features.extract import EXTRACTORS, NETWORKS, RECIPES

AVE_VIDEOS = 4143


def write_video(path: Path, seconds: int = 10, fps: int = 30) -> Path:
    """A 320 x 240 MPEG-4 video of a moving square with a 440 Hz AAC tone."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=fps)
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        sound = container.add_stream("aac", rate=16000)
        sound.layout = "mono"
        for i in range(seconds * fps):
            image = np.zeros((240, 320, 3), dtype=np.uint8)
            image[100:140, (4 * i) % 280 : (4 * i) % 280 + 40] = 255
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(seconds * 16000) / 16000)
        for start in range(0, tone.size, 1024):
            chunk = tone[None, start : start + 1024].astype(np.float32)
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, start
            container.mux(sound.encode(frame))
        container.mux(sound.encode())
        container.mux(video.encode())
    return path


def _seconds(function) -> float:
    start = time.perf_counter()
    function()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def bench_recipe(name: str, video: Path, device: torch.device, repeat: int) -> dict:
    """Median decode and extraction seconds of one video with recipe ``name``."""
    recipe = RECIPES[name]
    networks = {net: NETWORKS[net][0]() for net in recipe.networks}
    extractor = EXTRACTORS[name](recipe, networks, device)
    extractor.video_features(video)  # warm-up
    decode = [_seconds(lambda: list(read_clips(video, recipe.frames))) for _ in range(repeat)]
    total = [_seconds(lambda: extractor.video_features(video)) for _ in range(repeat)]
    seconds = float(np.median(total))
    return {"decode s": float(np.median(decode)), "features s": seconds, "videos/h": 3600 / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, help="a video to time (default: a synthetic one)")
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        video = args.video or write_video(Path(tmp) / "bench.mp4")
        print(f"device {device}, torch threads {torch.get_num_threads()}, video {video.name}")
        print("| recipe | decode s | features s | videos/h | AVE (4143 videos) h |")
        print("|---|---:|---:|---:|---:|")
        for name in args.recipes:
            row = bench_recipe(name, video, device, args.repeat)
            hours = AVE_VIDEOS * row["features s"] / 3600
            print(
                f"| {name} | {row['decode s']:.2f} | {row['features s']:.2f} | "
                f"{row['videos/h']:.0f} | {hours:.1f} |"
            )


if __name__ == "__main__":
    main()
