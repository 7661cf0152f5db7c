"""The dataset check (DESIGN.md §9): run each problem's own reference solutions under the same
engine and judge as generated programs, and use the result to score over usable problems.

- `check.py`: run the solutions, classify each problem, write `dataset_check.parquet` / `.json`;
- `subset.py`: read a check back and decide which problems of a run it keeps and why it drops the rest.
"""
