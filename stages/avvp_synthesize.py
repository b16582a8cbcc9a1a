"""avvp_synthesize stage: generate the synthetic LLP store (``avvp.source: synthetic``).

Reads ``avvp.{source,synthetic}``; writes ``data/llp_synthetic/``, the synthetic store in the
release's layout (:mod:`pipeline.avvp.synthetic`), or an empty directory for the other
sources. The output is cached by DVC, so a queued experiment restores it by link.
"""

from pipeline.avvp.synthetic import generate_llp
from pipeline.config import paths
from pipeline.config.params import load_params
from pipeline.errors import run_stage
from pipeline.io import atomic_dir

PARAMS = ("avvp.source", "avvp.synthetic")  # what dvc.yaml declares (tests/avvp/test_stages.py)


def main(params: dict) -> None:
    config = params["avvp"]
    if config["source"] == "synthetic":
        generate_llp(paths.LLP_SYNTHETIC, **config["synthetic"])
    else:
        with atomic_dir(paths.LLP_SYNTHETIC):
            pass
    made = "a synthetic LLP store" if config["source"] == "synthetic" else "nothing"
    print(f"{paths.LLP_SYNTHETIC}: {made}")


if __name__ == "__main__":
    run_stage(lambda: main(load_params(("avvp",), with_model=False)))  # reads no model
