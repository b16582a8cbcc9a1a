"""pool stage: the 7x7-averaged visual features, computed once per store version.

Reads ``data/ave/``'s visual files (streamed once, in blocks of rows); writes
``data/pooled/visual_feature.npy`` and, with background-only videos,
``data/pooled/visual_feature_noisy.npy`` (float32 ``(n, T, C)``, cached by DVC). Every
stage that trains or evaluates a model without maps reads these instead of the maps.
"""

from pipeline.config import paths
from pipeline.data.pooled import pool_store
from pipeline.errors import run_stage


def main() -> None:
    shapes = pool_store(paths.STORE, paths.POOLED)
    for name, shape in shapes.items():
        print(f"{paths.POOLED}: {name} pooled to {shape}")


if __name__ == "__main__":
    run_stage(main)
