"""Training: the loop, the objectives and losses, checkpoints and resuming."""
