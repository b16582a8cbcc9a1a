"""Every path of the pipeline, in one place; ``dvc.yaml`` mirrors these."""

from pathlib import Path

TASKS = ("sel", "wsel")  # the argument of the train stage
EVALUATED = ("sel", "wsel", "wsel_refined")  # the foreach items of the evaluate stage

DATA = Path("data")
STORE = DATA / "ave"
MODELS = DATA / "models"
METRICS = Path("metrics")
REPORTS = Path("reports")

DOWNLOAD_METRICS = METRICS / "download.json"
TRAIN_METRICS = METRICS / "train"
TRAIN_LOGS = METRICS / "train_log"
EVALUATE_METRICS = METRICS / "evaluate"
DATABASE_METRICS = METRICS / "database.json"
AUGMENT_METRICS = METRICS / "augment.json"
REFINE_METRICS = METRICS / "refine.json"

DATABASE = DATA / "db"
SUBEVENTS = DATABASE / "subevents.npz"
STATES = DATABASE / "states.npz"
AUGMENTED = DATA / "augmented"
REPLICAS = AUGMENTED / "replicas.npz"
SMB = AUGMENTED / "smb.npz"
REFINED = DATA / "refined" / "labels.npz"


def checkpoint(task: str) -> Path:
    """Path of the best checkpoint of ``task`` (``sel``, ``wsel`` or ``wsel_refined``)."""
    return MODELS / f"{task}.pt"
