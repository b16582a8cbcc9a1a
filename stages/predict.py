"""Predict the event timeline of a user's video with a trained checkpoint (not a DVC stage).

Usage: ``python -m stages.predict PATH/TO/VIDEO.mp4``. Reads ``params.yaml`` section
``predict`` (``checkpoint``, ``output_dir``, ``b2ilc``, ``device``) and the feature keys of
``data`` (``features``, ``weights``, ``download_dir``), which must be those the checkpoint's
training data was made with. Class names come from ``data/ave/Annotations.txt`` when the
store has it. Writes ``<output_dir>/<video name>.json`` (per-segment classes and
probabilities) and ``<output_dir>/<video name>_timeline.png``.
"""

import sys
from pathlib import Path

from pipeline.config import paths
from pipeline.config.params import load_params
from pipeline.data.annotations import class_names
from pipeline.data.videos import recipe_of, weights_files
from pipeline.device import resolve_device
from pipeline.errors import PipelineError, run_stage
from pipeline.evaluation.plots import plot_prediction
from pipeline.evaluation.predict import (
    check_model_length,
    default_class_names,
    segment_scores,
    timeline,
)
from pipeline.features.extract import Recipe, build_extractor
from pipeline.io import write_json
from pipeline.training.checkpoint import load_checkpoint

SECTIONS = ("predict", "data")


def _check_features(meta: dict, recipe: Recipe, checkpoint: str) -> None:
    """The checkpoint's input sizes must be those of ``recipe``'s features."""
    kwargs = meta["kwargs"]
    height, width, channels = recipe.map_shape
    expected = {"audio_dim": recipe.audio_dim, "visual_dim": channels, "n_regions": height * width}
    for key, value in expected.items():
        if key in kwargs and kwargs[key] != value:
            raise PipelineError(
                f"{checkpoint}: expected a model trained on data.features {recipe.name} "
                f"({key} {value}), found {key} {kwargs[key]}"
            )


def main(params: dict, video: str) -> None:
    if not video:
        raise PipelineError("usage: python -m stages.predict PATH/TO/VIDEO.mp4")
    config = params["predict"]
    data = dict(params["data"], download_dir=paths.download_dir(params["data"]))
    recipe = recipe_of(data)
    device = resolve_device(config["device"])
    model, meta = load_checkpoint(config["checkpoint"], device)
    _check_features(meta, recipe, config["checkpoint"])
    extractor = build_extractor(recipe, weights_files(data, recipe), device)
    features = extractor.video_features(video)
    segments = len(features["audio"])
    check_model_length(model, segments, video)
    scores = segment_scores(model, features["audio"], features["visual"], device)  # (T, C)
    names = class_names(paths.STORE) or default_class_names()
    rows, probabilities, records = timeline(scores, names, bool(config["b2ilc"]))
    out = Path(config["output_dir"])
    stem = Path(video).stem
    write_json(
        out / f"{stem}.json",
        {
            "video": str(video),
            "checkpoint": str(config["checkpoint"]),
            "model": meta["name"],
            "features": recipe.name,
            "segments": segments,
            "classes": names,
            "timeline": records,
        },
    )
    predicted = rows["prediction"]
    plot_prediction(
        rows,
        probabilities[range(segments), predicted],
        names,
        out / f"{stem}_timeline.png",
        f"{Path(video).name}: {meta['name']} ({recipe.name} features)",
    )
    events = sorted({names[c] for c in predicted.tolist()} - {names[-1]})
    print(f"{video}: {segments} s, events: {', '.join(events) or 'none'}; written to {out}")


if __name__ == "__main__":
    run_stage(lambda: main(load_params(SECTIONS), sys.argv[1] if len(sys.argv) > 1 else ""))
