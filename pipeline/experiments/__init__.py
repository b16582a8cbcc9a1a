"""Experiments: the papers' ablation tables as DVC experiments."""
