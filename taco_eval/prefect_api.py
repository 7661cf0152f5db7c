"""Reaching a Prefect API from the CLI: a temporary server that may start slowly, and one clear
line when none can be reached.

Without `PREFECT_API_URL`, Prefect starts a temporary server and waits 20 s for it; the first start
with a fresh `PREFECT_HOME` migrates its database first, which takes 21-30 s on a small machine, so
a new user's first run failed with a traceback. Unless the user chose a timeout, we allow
`STARTUP_TIMEOUT_S`.
"""

from __future__ import annotations

import os

STARTUP_TIMEOUT_S = 120
TIMEOUT_VARIABLE = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
_START_FAILED = "ephemeral Prefect API server"  # in the message of Prefect's RuntimeError


class PrefectUnavailable(RuntimeError):
    """No Prefect API could be reached: the CLI prints the message as one line, exit status 1."""


def prepare_environment() -> None:
    """Call before Prefect is imported: its settings are read from the environment once."""
    if TIMEOUT_VARIABLE not in os.environ and "PREFECT_API_URL" not in os.environ:
        os.environ[TIMEOUT_VARIABLE] = str(STARTUP_TIMEOUT_S)
    # This machine may have no route to the internet: no telemetry from a temporary server.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def explain(exc: BaseException) -> PrefectUnavailable | None:
    """The one-line error for a failed start of the temporary server, or None for other errors."""
    if not (isinstance(exc, RuntimeError) and _START_FAILED in str(exc)):
        return None
    waited = os.environ.get(TIMEOUT_VARIABLE, "20")
    return PrefectUnavailable(
        f"the temporary Prefect server did not answer within {waited} s (a fresh PREFECT_HOME migrates its "
        f"database first). Set PREFECT_API_URL to a running server (`prefect server start`), or raise "
        f"{TIMEOUT_VARIABLE}."
    )
