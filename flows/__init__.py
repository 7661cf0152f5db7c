"""Everything that imports Prefect: the `taco-eval` flow, its @task wrappers, artifacts, events and
the end-of-run steps. The stages it orders live in `tasks/` (docs/architecture.md)."""
