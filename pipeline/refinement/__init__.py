"""The weak chain's Step 2 (seed 004 §4.2): slices and their pseudo-labels."""
