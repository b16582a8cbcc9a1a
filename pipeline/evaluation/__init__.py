"""Evaluation: strategies, metrics with CIs, B2ILC, plots, prediction on videos."""
