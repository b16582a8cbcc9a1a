"""evaluate stage: test-split metrics of a trained task beside the naive strategies.

Reads ``params.yaml`` section ``evaluate``, ``data/ave/`` and ``data/models/<task>.pt``;
writes the scalar metrics to ``metrics/evaluate/<task>.json`` (each with its 95 % bootstrap
CI over test videos, ``<metric>_ci_low`` / ``_ci_high``), the test videos' predictions of
every strategy to ``reports/predictions/<task>.json`` (so that experiments can be compared
pairwise), with the model's three most probable classes per segment and their probabilities
(``model_top_classes``, ``model_top_probabilities``), the per-class accuracy and confusion
matrix to ``reports/<task>_details.json``, and ``reports/<task>_confusion.png`` and
``reports/<task>_timeline.png``. With
``evaluate.b2ilc`` the model's predictions are also scored after Bag-to-Instance label
correction (seed 002, ``model_b2ilc``); a model with several outputs (EDRNet's A and V
branches, seed 002 Table 4) has each scored as ``model_output_<name>``. When the store has
corrected labels (``right_labels.h5``, C-AVE), everything is also scored against them under
``c_ave``. When the store holds ``Annotations.txt``, the plots and the details name the
classes. Usage: ``python -m stages.evaluate sel|wsel|wsel_refined``.
"""

import sys

import numpy as np
import torch

from pipeline.config import paths
from pipeline.config.params import load_params
from pipeline.data import store
from pipeline.data.annotations import class_names
from pipeline.data.dataset import AVEDataset, make_loader
from pipeline.device import resolve_device
from pipeline.errors import run_stage
from pipeline.evaluation.metrics import gt_repeat
from pipeline.evaluation.plots import plot_confusion, plot_timelines
from pipeline.evaluation.scoring import score_predictions, strategy_predictions, top_probabilities
from pipeline.io import write_json
from pipeline.training.checkpoint import load_checkpoint
from pipeline.training.loop import loader_options, place, predict
from stages.common import task_argument

DETAIL_KEYS = ("per_class_accuracy", "confusion_matrix")


def _pop_details(metrics: dict) -> dict:
    """Move the per-class lists out of a metrics dict (DVC metrics stay small scalars)."""
    return {key: metrics.pop(key) for key in DETAIL_KEYS}


def _predictions(model, dataset: AVEDataset, config: dict, labels: np.ndarray, device) -> tuple:
    """Every strategy's ``(n, T)`` predictions of the split, and the ``(n, T, C)`` scores."""
    precision = config["precision"]
    resident = not model.needs_maps and place([dataset], device)
    loader = make_loader(dataset, config["batch_size"], **loader_options(device, resident))
    scores = predict(model, loader, device, precision)  # (n, T, C)
    with torch.no_grad():  # a weak head may have weights (PSP's temporal weighting)
        video_probs = model.video_probabilities(torch.from_numpy(scores).to(device))  # (n, C)
    video_probs = video_probs.cpu().numpy()
    predictions = strategy_predictions(scores, video_probs, labels, bool(config["b2ilc"]))
    for output in model.outputs[:-1]:  # EDRNet's single-branch outputs
        branch = predict(model, loader, device, precision, output=output).argmax(-1)  # (n, T)
        predictions[f"model_output_{output}"] = branch
    return predictions, scores


def _right_labels(split: str) -> np.ndarray | None:
    """The split's corrected (C-AVE) segment labels, when the store has them."""
    if not (paths.STORE / store.RIGHT_LABELS).exists():
        return None
    rows = store.split_order(paths.STORE, split)
    return store.segment_labels(paths.STORE, store.RIGHT_LABELS)[rows]  # (n, T)


def main(params: dict, task: str) -> None:
    config = params["evaluate"]
    device = resolve_device(config["device"])
    model, meta = load_checkpoint(paths.checkpoint(task), device)
    dataset = AVEDataset(paths.STORE, config["split"], paths.pooled_features(model.needs_maps))
    labels = dataset.labels  # (n, T)
    predictions, scores = _predictions(model, dataset, config, labels, device)
    resampling = (config["bootstrap"], config["seed"])
    results = score_predictions(predictions, labels, *resampling)
    kept = {"rows": store.split_order(paths.STORE, config["split"]), "labels": labels}
    kept.update(top_probabilities(scores))  # per-segment confidence, for pipeline.site
    right = _right_labels(config["split"])
    if right is not None:
        cave = {**predictions, "gt_repeat": gt_repeat(right)}
        results["c_ave"] = score_predictions(cave, right, *resampling)
        kept["right_labels"] = right
    details = {name: _pop_details(results[name]) for name in predictions}
    for name, metrics in results.get("c_ave", {}).items():
        details[f"c_ave_{name}"] = _pop_details(metrics)
    names = class_names(paths.STORE)
    if names is not None:
        details["class_names"] = names
    results["split"] = config["split"]
    results["checkpoint"] = {"epoch": meta["epoch"], "val_accuracy": meta["val_accuracy"]}
    write_json(paths.EVALUATE_METRICS / f"{task}.json", results)
    write_json(paths.PREDICTIONS / f"{task}.json", _as_lists({**kept, **predictions}), indent=None)
    write_json(paths.REPORTS / f"{task}_details.json", details)
    confusion = details["model"]["confusion_matrix"]
    title = f"{task}: {meta['name']}"
    plot_confusion(confusion, paths.REPORTS / f"{task}_confusion.png", title, names)
    k = config["timeline_videos"]
    plot_timelines(
        labels[:k],
        predictions["model"][:k],
        paths.REPORTS / f"{task}_timeline.png",
        f"{task}: first {k} {config['split']} videos",
        names,
    )
    accuracy = results["model"]["accuracy"]
    print(f"{task} {config['split']} accuracy {accuracy:.3f}")


def _as_lists(arrays: dict[str, np.ndarray]) -> dict[str, list]:
    return {name: np.asarray(value).tolist() for name, value in arrays.items()}


def run(argv: list[str]) -> None:
    """Check the task and the ``evaluate`` section, then evaluate."""
    task = task_argument(argv[1] if len(argv) > 1 else "", paths.EVALUATED)
    main(load_params(("evaluate",)), task)


if __name__ == "__main__":
    run_stage(lambda: run(sys.argv))
