"""Reporting: run data, pass@k comparisons, bootstrap, plots, history, the report document."""
