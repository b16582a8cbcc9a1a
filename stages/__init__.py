"""Thin DVC stage entry points: ``python -m stages.<name> [task]``."""
