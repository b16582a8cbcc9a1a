"""Keyword arguments of a callable, to check ``params.yaml`` keys against what code accepts."""

import inspect
from collections.abc import Callable


def keyword_names(func: Callable, exclude: tuple[str, ...] = ()) -> list[str]:
    """Names of the parameters of ``func`` that have defaults, minus ``exclude``.

    Used to check ``params.yaml`` sections against the functions and model constructors
    that take them (every argument they accept from params has a default).
    """
    return [
        name
        for name, p in inspect.signature(func).parameters.items()
        if p.default is not inspect.Parameter.empty and name not in exclude
    ]
