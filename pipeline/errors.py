"""User-facing errors.

Anything a user can cause (bad params, a missing or malformed file) raises
:class:`PipelineError` with one message that names the file or key, what was expected
and what was found. Stage entry points turn it into that message on stderr and exit 1.
"""

import sys
from collections.abc import Callable


class PipelineError(Exception):
    """An error caused by the user's input, reported as one clear message."""


def run_stage(main: Callable[[], object]) -> None:
    """Run a stage entry point; report :class:`PipelineError` without a traceback.

    Args:
        main: the stage's zero-argument entry point.
    """
    try:
        main()
    except PipelineError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
