"""Every path of the pipeline, in one place; ``dvc.yaml`` mirrors these."""

from pathlib import Path

import platformdirs

TASKS = ("sel", "wsel")  # the argument of the train stage
EVALUATED = ("sel", "wsel", "wsel_refined")  # the foreach items of the evaluate stage

DATA = Path("data")
SYNTHETIC = DATA / "synthetic"  # the synthesize stage's store (DVC-cached; empty for other sources)
STORE = DATA / "ave"
POOLED = DATA / "pooled"  # the pool stage's 7x7-averaged visual features (DVC-cached)
MODELS = DATA / "models"
MODEL_CODE = DATA / "model_code.json"  # the model_code stage's fingerprint of the chosen model
AVVP_MODEL_CODE = DATA / "avvp_model_code.json"  # the same of avvp.model.name (avvp_model_code)
METRICS = Path("metrics")
REPORTS = Path("reports")

DOWNLOAD_METRICS = METRICS / "download.json"
TRAIN_METRICS = METRICS / "train"
TRAIN_LOGS = METRICS / "train_log"
EVALUATE_METRICS = METRICS / "evaluate"
DATABASE_METRICS = METRICS / "database.json"
DATABASE_COUNTS = REPORTS / "database_counts.json"
AUGMENT_METRICS = METRICS / "augment.json"
REFINE_METRICS = METRICS / "refine.json"
PREDICTIONS = REPORTS / "predictions"  # per task: the test videos' predictions (JSON)

DATABASE = DATA / "db"
SUBEVENTS = DATABASE / "subevents.npz"
STATES = DATABASE / "states.npz"
AUGMENTED = DATA / "augmented"
REPLICAS = AUGMENTED / "replicas.npz"
SMB = AUGMENTED / "smb.npz"
REFINED = DATA / "refined" / "labels.npz"
RESUME = Path(".resume")  # git- and DVC-ignored, never a stage output (pipeline.training.resume)


def checkpoint(task: str) -> Path:
    """Path of the best checkpoint of ``task`` (``sel``, ``wsel`` or ``wsel_refined``)."""
    return MODELS / f"{task}.pt"


def pooled_features(needs_maps: bool) -> Path | None:
    """The visual input of a model: :data:`POOLED`, or None for the maps of :data:`STORE`."""
    return None if needs_maps else POOLED


def user_cache() -> Path:
    """The pipeline's directory in the user's cache, shared by all of the user's workspaces.

    ``$XDG_CACHE_HOME/avel`` (by default ``~/.cache/avel``) on Linux, the platform's
    equivalent elsewhere (:mod:`platformdirs`). It holds the downloads of the ``ave``
    source (:func:`default_download_dir`) and the file ledger (:func:`ledger_file`).
    """
    return Path(platformdirs.user_cache_dir("avel"))


def default_download_dir() -> Path:
    """Where the ``ave`` source downloads to when ``data.download_dir`` is null."""
    return user_cache() / "ave"


def download_dir(data: dict) -> str:
    """``data.download_dir``, or :func:`default_download_dir` when it is null."""
    return str(data["download_dir"] or default_download_dir())


def ledger_file() -> Path:
    """The :class:`~pipeline.data.ledger.FileLedger` of validated and hashed files."""
    return user_cache() / "files.sqlite"


def resume_state(task: str) -> Path:
    """Path of the resume state of an interrupted training of ``task``."""
    return RESUME / f"{task}.pt"


# The AVVP task (pipeline.avvp): LLP store, HAN checkpoints, refined labels, metrics.
AVVP_TASKS = ("han", "han_lr")  # the foreach items of avvp_evaluate
LLP_SYNTHETIC = DATA / "llp_synthetic"  # the avvp_synthesize stage's store (DVC-cached)
LLP_STORE = DATA / "llp"
AVVP_METRICS = METRICS / "avvp"
AVVP_DOWNLOAD_METRICS = AVVP_METRICS / "download.json"
AVVP_REFINE_METRICS = AVVP_METRICS / "refine.json"
AVVP_REFINED = DATA / "avvp_refined" / "labels.npz"  # not under data/refined: an output


def avvp_checkpoint(task: str) -> Path:
    """The AVVP model's checkpoint of ``task`` (``han``: Step 1, ``han_lr``: retrained)."""
    return MODELS / f"avvp_{task}.pt"


def avvp_train_log(task: str) -> Path:
    """The dvclive folder of the per-epoch log of AVVP ``task`` (``han`` or ``han_lr``)."""
    return AVVP_METRICS / "train_log" / task


def avvp_train_metrics(task: str) -> Path:
    return AVVP_METRICS / "train" / f"{task}.json"


def avvp_evaluate_metrics(task: str) -> Path:
    return AVVP_METRICS / "evaluate" / f"{task}.json"


def avvp_predictions(task: str) -> Path:
    """Per-video scores of ``task`` on the test split (read by the tables)."""
    return PREDICTIONS / f"avvp_{task}.json"


def default_llp_download_dir() -> Path:
    """Where the ``llp`` source downloads to when ``avvp.download_dir`` is null."""
    return user_cache() / "llp"
