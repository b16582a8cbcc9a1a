"""augment stage: replica pool (seed 001 Algorithm 1) and SMB-fused videos (seed 002 Alg. 1).

Reads ``augment.{seed,replicas_per_video,smb_per_class}``, ``data/ave/`` and ``data/db/``;
writes ``data/augmented/replicas.npz`` (``replicas_per_video`` replicas of each training
video, in train-split order) and ``data/augmented/smb.npz`` (``smb_per_class`` fused videos
per class, each with the event layout of a random training video of its class), both as
(store row, segment) index arrays with their labels, and ``metrics/augment.json`` (counts
and fallbacks).
"""

from pipeline.augment.compositions import save_compositions
from pipeline.augment.database import load_database
from pipeline.augment.replicas import make_replicas
from pipeline.augment.smb import event_spans, smb_fusion
from pipeline.config import paths
from pipeline.config.params import load_params
from pipeline.data import store
from pipeline.errors import run_stage
from pipeline.io import write_json


def main(params: dict) -> None:
    config = params["augment"]
    rows = store.split_order(paths.STORE, "train")
    labels = store.segment_labels(paths.STORE)[rows]  # (n, T)
    replicas = make_replicas(
        labels,
        rows,
        load_database(paths.SUBEVENTS),
        config["replicas_per_video"],
        config["seed"],
    )
    fused = smb_fusion(
        load_database(paths.STATES),
        config["smb_per_class"],
        config["seed"],
        layouts=event_spans(labels),
    )
    save_compositions(paths.REPLICAS, replicas)
    save_compositions(paths.SMB, fused)
    write_json(
        paths.AUGMENT_METRICS,
        {
            "replicas": len(replicas),
            "replica_fallbacks": replicas.fallbacks,
            "smb_videos": len(fused),
            "smb_fallbacks": fused.fallbacks,
        },
    )
    print(f"augment: {len(replicas)} replicas, {len(fused)} SMB videos")


if __name__ == "__main__":
    run_stage(lambda: main(load_params(("augment",))))
