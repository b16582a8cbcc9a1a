"""evaluate stage: test-split metrics of a trained task beside the naive strategies.

Reads ``params.yaml`` section ``evaluate``, ``data/ave/`` and ``data/models/<task>.pt``;
writes the scalar metrics to ``metrics/evaluate/<task>.json``, the per-class accuracy and
confusion matrix to ``reports/<task>_details.json``, and ``reports/<task>_confusion.png`` and
``reports/<task>_timeline.png``. With ``evaluate.b2ilc`` the model's predictions are also
scored after Bag-to-Instance label correction (seed 002, ``model_b2ilc``); a model with
several outputs (EDRNet's A and V branches, seed 002 Table 4) has each scored as
``model_output_<name>``. Usage: ``python -m stages.evaluate sel|wsel|wsel_refined``.
"""

import sys

import torch

from pipeline import paths
from pipeline.checkpoint import load_checkpoint
from pipeline.data.dataset import AVEDataset, make_loader
from pipeline.errors import run_stage
from pipeline.evaluate import evaluate_scores
from pipeline.io import write_json
from pipeline.metrics import segment_metrics
from pipeline.params import choice, load_params, section
from pipeline.plots import plot_confusion, plot_timelines
from pipeline.train import predict, resolve_device

EVALUATE_KEYS = ["device", "batch_size", "split", "timeline_videos", "b2ilc"]
DETAIL_KEYS = ("per_class_accuracy", "confusion_matrix")


def _pop_details(metrics: dict) -> dict:
    """Move the per-class lists out of a metrics dict (DVC metrics stay small scalars)."""
    return {key: metrics.pop(key) for key in DETAIL_KEYS}


def main(params: dict, task: str) -> None:
    choice(task, "the stage argument (task)", paths.EVALUATED)
    config = section(params, "evaluate", EVALUATE_KEYS)
    choice(config["split"], "evaluate.split", ["val", "test"])
    device = resolve_device(config["device"])
    model, meta = load_checkpoint(paths.checkpoint(task), device)
    dataset = AVEDataset(paths.STORE, config["split"], pooled=not model.needs_maps)
    loader = make_loader(dataset, config["batch_size"])
    scores = predict(model, loader, device)  # (n, T, C)
    video_probs = model.video_probabilities(torch.from_numpy(scores)).numpy()  # (n, C)
    results = evaluate_scores(scores, video_probs, dataset.labels, bool(config["b2ilc"]))
    for output in getattr(model, "outputs", ())[:-1]:  # EDRNet's single-branch outputs
        branch = predict(model, loader, device, output=output).argmax(axis=-1)  # (n, T)
        results[f"model_output_{output}"] = segment_metrics(dataset.labels, branch)
    details = {name: _pop_details(metrics) for name, metrics in results.items()}
    results["split"] = config["split"]
    results["checkpoint"] = {"epoch": meta["epoch"], "val_accuracy": meta["val_accuracy"]}
    write_json(paths.EVALUATE_METRICS / f"{task}.json", results)
    write_json(paths.REPORTS / f"{task}_details.json", details)
    confusion = details["model"]["confusion_matrix"]
    plot_confusion(confusion, paths.REPORTS / f"{task}_confusion.png", f"{task}: {meta['name']}")
    k = config["timeline_videos"]
    plot_timelines(
        dataset.labels[:k],
        scores[:k].argmax(axis=-1),
        paths.REPORTS / f"{task}_timeline.png",
        f"{task}: first {k} {config['split']} videos",
    )
    accuracy = results["model"]["accuracy"]
    print(f"{task} {config['split']} accuracy {accuracy:.3f}")


if __name__ == "__main__":
    run_stage(lambda: main(load_params(), sys.argv[1] if len(sys.argv) > 1 else ""))
