"""avvp_evaluate stage: the AVVP metrics of the model (HAN) or its retraining (HAN + LR) on
LLP's test videos.

Reads ``avvp.evaluate``, ``train.device``, ``data/llp/``, ``data/avvp_model_code.json`` and
``data/models/avvp_<task>.pt`` (any registered AVVP model);
writes ``metrics/avvp/evaluate/<task>.json`` (every metric of :mod:`pipeline.avvp.metrics`
with its 95 % bootstrap CI over test videos) and ``reports/predictions/avvp_<task>.json``
(each test video's scores, from which the tables compute seed summaries).
Usage: ``python -m stages.avvp_evaluate han|han_lr``.
"""

import sys

from pipeline.avvp.metrics import binarize, bootstrap_ci, per_video_scores
from pipeline.avvp.train import load_data, predict_avvp
from pipeline.config import paths
from pipeline.config.params import load_params
from pipeline.device import resolve_device
from pipeline.errors import run_stage
from pipeline.io import write_json
from pipeline.training.checkpoint import load_checkpoint
from stages.common import task_argument

PARAMS = ("avvp.evaluate", "train.device")


def main(params: dict, task: str) -> None:
    task = task_argument(task, paths.AVVP_TASKS)
    config = params["avvp"]["evaluate"]
    device = resolve_device(params["train"]["device"])
    model, meta = load_checkpoint(paths.avvp_checkpoint(task), device, "avvp")
    test = load_data(paths.LLP_STORE, "test").to(device)
    events = binarize(*predict_avvp(model, test, config["batch_size"]))
    scores = per_video_scores(events, test.dense)
    means = {name: float(values.mean()) for name, values in scores.items()}
    ci = bootstrap_ci(events, test.dense, config["bootstrap"], config["seed"])
    write_json(
        paths.avvp_evaluate_metrics(task),
        {
            "split": "test",
            "videos": len(test.names),
            "model": means,
            "ci": ci,
            "epoch": meta.get("epoch"),
        },
    )
    write_json(
        paths.avvp_predictions(task),
        {"names": test.names, "model": {k: v.tolist() for k, v in scores.items()}},
        indent=None,
    )
    print(f"avvp {task}: " + ", ".join(f"{k} {100 * v:.1f}" for k, v in means.items()))


if __name__ == "__main__":
    run_stage(
        lambda: main(load_params(("avvp", "train")), sys.argv[1] if len(sys.argv) > 1 else "")
    )
