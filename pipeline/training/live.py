"""The per-epoch log of every training stage, AVEL and AVVP alike, through dvclive.

``<directory>/metrics.json`` holds the latest epoch (``dvc exp show`` lists it while the
stage runs) and ``<directory>/plots/metrics/<key>.tsv`` the curves of ``dvc plots``, one
row per epoch at step = epoch, without timestamps (the same bytes on a rerun).
"""

from collections.abc import Callable, Sequence
from pathlib import Path

from dvclive import Live


def epoch_logger(
    directory: str | Path, keys: Sequence[str]
) -> tuple[Live, Callable[[dict[str, float]], None]]:
    """A dvclive log in ``directory`` and the ``on_epoch`` callback that writes ``keys`` of
    each epoch's row (which holds ``epoch``); call ``live.end()`` when training is done.

    Args:
        directory: the log's folder (``metrics/train_log/<task>``).
        keys: the entries of a row to log, e.g. ``("train_loss", "val_accuracy", "lr")``.
    """
    live = Live(str(directory), report=None, save_dvc_exp=False, dvcyaml=None)

    def log(row: dict[str, float]) -> None:
        live.step = row["epoch"]
        for key in keys:
            live.log_metric(key, row[key], timestamp=False)
        live.next_step()

    return live, log
