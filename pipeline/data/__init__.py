"""Data layer: the AVE store contract, its sources, the synthetic generator, torch datasets."""
