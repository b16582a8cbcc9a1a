"""download stage: build ``data/ave/`` from the chosen source and summarise it.

Reads ``params.yaml`` section ``data``; writes ``data/ave/`` and ``metrics/download.json``.
"""

from pipeline import paths
from pipeline.data.sources import SOURCES, build_store, store_summary
from pipeline.data.synthetic import generate_synthetic
from pipeline.errors import run_stage
from pipeline.io import write_json
from pipeline.params import choice, load_params, section
from pipeline.signature import keyword_names


def main(params: dict) -> None:
    data = section(params, "data", ["source", "local_dir", "download_dir", "sources", "synthetic"])
    choice(data["source"], "data.source", SOURCES)
    section(params, "data.synthetic", [], optional=keyword_names(generate_synthetic))
    info = build_store(paths.STORE, data)
    write_json(paths.DOWNLOAD_METRICS, store_summary(paths.STORE, data["source"], info))
    print(f"data/ave: {info.splits} videos, {info.n_background} background-only ({data['source']})")


if __name__ == "__main__":
    run_stage(lambda: main(load_params()))
