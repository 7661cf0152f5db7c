"""Errors that the CLI turns into one clear line and exit code 2."""


class UsageError(Exception):
    """Bad arguments or unreadable input: say what is wrong, where, and how to fix it."""
