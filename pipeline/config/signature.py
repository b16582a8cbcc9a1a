"""Keyword arguments of a callable, to check ``params.yaml`` keys against what code accepts."""

import inspect
from collections.abc import Callable
from typing import Any


def keyword_defaults(func: Callable) -> dict[str, Any]:
    """The parameters of ``func`` that have defaults, with their defaults, in order.

    Used to check ``params.yaml`` sections against the functions and model constructors
    that take them (every argument they accept from params has a default).
    """
    parameters = inspect.signature(func).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}
