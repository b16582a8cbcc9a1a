"""Argument checks shared by the model constructors: a bad value is a user error."""

from pipeline.errors import PipelineError


def check_int(owner: str, name: str, value: int, minimum: int = 1) -> None:
    """Raise :class:`PipelineError` unless ``value`` is an integer ``>= minimum``.

    Args:
        owner: what takes the argument (named in the message).
        name: the argument's name.
        value: its value.
        minimum: the smallest valid value (default: 1).
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PipelineError(f"{owner} {name}: expected an integer >= {minimum}, found {value!r}")


def check_probability(owner: str, name: str, value: float) -> None:
    """Raise :class:`PipelineError` unless ``value`` is a number in ``[0, 1)``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise PipelineError(f"{owner} {name}: expected a number in [0, 1), found {value!r}")
