"""database stage: the sub-event (DPNet) and state (EDRNet) databases of the training split.

Reads ``data/ave/`` (training split labels only); writes ``data/db/subevents.npz`` (seed 001
§3.4), ``data/db/states.npz`` (seed 002 Table 1) as (video, first segment, length, kind,
class) records, never feature copies, ``metrics/database.json``: the counts per kind or
state and the videos skipped and why, and ``reports/database_counts.json``: the same per
class as well (about 300 counts, kept out of the metrics so that ``dvc exp show`` stays
readable). The databases have no parameters: the papers fix their construction
(one-segment context windows, the eight state patterns).
"""

from pipeline.augment.database import (
    build_state_database,
    build_subevent_database,
    counts,
    save_database,
)
from pipeline.config import paths
from pipeline.data import store
from pipeline.errors import run_stage
from pipeline.io import write_json


def main() -> None:
    rows = store.split_order(paths.STORE, "train")
    labels = store.segment_labels(paths.STORE)[rows]  # (n, T)
    subevents = build_subevent_database(labels, rows)
    states = build_state_database(labels, rows)
    save_database(paths.SUBEVENTS, subevents)
    save_database(paths.STATES, states)
    full = {"subevents": counts(subevents), "states": counts(states)}
    write_json(paths.DATABASE_COUNTS, {"training_videos": len(rows), **full})
    totals = {
        name: {key: n for key, n in per_key.items() if "/class_" not in key}
        for name, per_key in full.items()
    }
    write_json(paths.DATABASE_METRICS, {"training_videos": len(rows), **totals})
    print(f"database: {len(subevents)} sub-event and {len(states)} state records")


if __name__ == "__main__":
    run_stage(main)
