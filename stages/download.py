"""download stage: build ``data/ave/`` from the chosen source and summarise it.

Reads ``data.{source,local_dir,download_dir,sources,right_labels}``, the ``videos`` source's
keys, and, for the synthetic source, ``data/synthetic/`` (the synthesize stage's store);
writes ``data/ave/`` (links, never copies) and ``metrics/download.json``. Downloads go to
``data.download_dir``, by default a directory of the user's cache shared by every workspace;
validation and checksums are recorded per file identity in the user's cache
(:mod:`pipeline.data.ledger`), so that an unchanged file is read once, not once per run or
per queued experiment. The ``videos`` source extracts features from raw videos first
(:mod:`pipeline.data.videos`).
"""

from pipeline.config import paths
from pipeline.config.params import load_params
from pipeline.data.ledger import FileLedger
from pipeline.data.sources import build_store, store_summary
from pipeline.data.videos import video_summary
from pipeline.errors import run_stage
from pipeline.io import write_json


def main(params: dict) -> None:
    data = dict(params["data"], download_dir=paths.download_dir(params["data"]))
    ledger = FileLedger(paths.ledger_file())
    try:
        info = build_store(paths.STORE, data, paths.SYNTHETIC, ledger)
        summary = store_summary(paths.STORE, data["source"], info, ledger)
    finally:
        ledger.close()
    summary |= video_summary(paths.STORE)
    write_json(paths.DOWNLOAD_METRICS, summary)
    print(f"data/ave: {info.splits} videos, {info.n_background} background-only ({data['source']})")


if __name__ == "__main__":
    run_stage(lambda: main(load_params(("data",))))
