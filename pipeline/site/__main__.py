"""``python -m pipeline.site build|figure``: see :mod:`pipeline.site`."""

import sys

from pipeline.errors import run_stage
from pipeline.site.cli import main

if __name__ == "__main__":
    run_stage(lambda: main(sys.argv[1:]))
