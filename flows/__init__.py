"""Prefect flows: compose the stage tasks, decide order and overlap. No business logic here."""
