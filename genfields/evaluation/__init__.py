"""Metrics, the paper's experiments, plots and reports."""
