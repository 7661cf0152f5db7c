"""Pipeline stages as plain Python (no Prefect, no argparse): the shared vocabulary (types, statuses,
defaults), plan, problems, metrics, and one sub-package per stage (docs/architecture.md)."""
