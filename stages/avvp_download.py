"""avvp_download stage: build ``data/llp/`` from the chosen source and summarise it.

Reads ``avvp.{source,local_dir,download_dir,sources}`` and, for the synthetic source,
``data/llp_synthetic/``; writes ``data/llp/`` (links, never copies; no DVC output, as
``data/ave/``) and ``metrics/avvp/download.json``: the videos per split, the feature shapes,
the dense events, and a sha256 per annotation file and per feature folder (of its files'
names and sha256s, recorded per file identity by the ledger), which the AVVP training
stages depend on. Always run, like ``download``: an edited local file is caught.
"""

import hashlib
from pathlib import Path

from pipeline.avvp import store as llp
from pipeline.avvp.sources import build_llp_store
from pipeline.config import paths
from pipeline.config.params import load_params
from pipeline.data.ledger import FileLedger
from pipeline.errors import run_stage
from pipeline.fetch import sha256_file
from pipeline.io import write_json

PARAMS = ("avvp.source", "avvp.local_dir", "avvp.download_dir", "avvp.sources")


def _digest(path: Path, ledger: FileLedger) -> str:
    return ledger.fact(path, "sha256", lambda: sha256_file(path))


def folder_digest(folder: Path, ledger: FileLedger) -> str:
    """sha256 of the sorted ``name sha256`` lines of a folder's files."""
    lines = "".join(f"{p.name} {_digest(p, ledger)}\n" for p in sorted(folder.iterdir()))
    return hashlib.sha256(lines.encode()).hexdigest()


def main(params: dict) -> None:
    config = dict(params["avvp"])
    config["download_dir"] = config["download_dir"] or str(paths.default_llp_download_dir())
    ledger = FileLedger(paths.ledger_file())
    try:
        info = build_llp_store(paths.LLP_STORE, config, paths.LLP_SYNTHETIC, ledger)
        store = paths.LLP_STORE
        names = (*llp.WEAK_FILES.values(), *llp.DENSE_FILES.values())
        digests = {name: _digest(store / name, ledger) for name in names}
        digests |= {f"{kind}/": folder_digest(store / kind, ledger) for kind in llp.FEATURES}
    finally:
        ledger.close()
    write_json(
        paths.AVVP_DOWNLOAD_METRICS,
        {
            "source": config["source"],
            "videos": info.splits,
            "dims": {kind: list(shape) for kind, shape in info.dims.items()},
            "dense_events": info.dense_events,
            "empty_events": info.empty_events,
            "sha256": digests,
        },
    )
    print(f"data/llp: {info.splits} videos ({config['source']})")


if __name__ == "__main__":
    run_stage(lambda: main(load_params(("avvp",), with_model=False)))  # reads no model
