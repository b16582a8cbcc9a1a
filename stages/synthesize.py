"""synthesize stage: generate the synthetic store (``data.source: synthetic``).

Reads ``data.{source,synthetic}``; writes ``data/synthetic/``, the synthetic store in the
official layout, or an empty directory for the other sources. The output is cached by DVC
(hard links, no copy), so that a queued experiment's fresh workspace restores it by link
from the cache instead of generating it again; the download stage links it into
``data/ave/``.
"""

from pipeline.config import paths
from pipeline.config.params import load_params
from pipeline.data.synthetic import generate_synthetic
from pipeline.errors import run_stage
from pipeline.io import atomic_dir


def main(params: dict) -> None:
    data = params["data"]
    synthetic = data["synthetic"]
    out = paths.SYNTHETIC
    with atomic_dir(out) as tmp:
        if data["source"] == "synthetic":
            generate_synthetic(tmp, **synthetic)
    made = "a synthetic store" if data["source"] == "synthetic" else "nothing (not synthetic)"
    print(f"{out}: {made}")


if __name__ == "__main__":
    run_stage(lambda: main(load_params(("data",))))
