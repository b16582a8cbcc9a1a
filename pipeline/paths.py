"""Every path of the pipeline, in one place; ``dvc.yaml`` mirrors these."""

from pathlib import Path

TASKS = ("sel", "wsel")  # the foreach items of the train and evaluate stages

DATA = Path("data")
STORE = DATA / "ave"
MODELS = DATA / "models"
METRICS = Path("metrics")
REPORTS = Path("reports")

DOWNLOAD_METRICS = METRICS / "download.json"
TRAIN_METRICS = METRICS / "train"
TRAIN_LOGS = METRICS / "train_log"
EVALUATE_METRICS = METRICS / "evaluate"


def checkpoint(task: str) -> Path:
    """Path of the best checkpoint of ``task`` (``sel`` or ``wsel``)."""
    return MODELS / f"{task}.pt"
