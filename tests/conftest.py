"""Shared fixtures. One Prefect test server per session (it takes ~10 s to start)."""

from __future__ import annotations

import os
import tempfile

import pytest

# Verdicts cached by tests stay out of the user's cache (set before tasks.defaults is imported).
os.environ.setdefault("TACO_EVAL_CACHE_DIR", tempfile.mkdtemp(prefix="taco-eval-test-cache-"))
# No telemetry from the test servers: no network here, and its start-up write races the server's
# own first writes on SQLite ("database is locked").
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory):
    """A real Prefect engine and API for the whole session; yields the API URL for subprocesses."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    home = tmp_path_factory.mktemp("prefect-home")
    os.environ.setdefault("PREFECT_LOCAL_STORAGE_PATH", str(home / "storage"))
    with prefect_test_harness(server_startup_timeout=60):
        yield PREFECT_API_URL.value()


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    """A real `prefect server start` for the whole session (tests marked `server`); yields the
    environment for subprocesses that use it. The harness above stays the API of this process."""
    from tests.servers import prefect_server_env, stop

    proc, env = prefect_server_env(tmp_path_factory.mktemp("prefect-server-home"))
    try:
        yield env
    finally:
        stop(proc)


# --- generation engine ---------------------------------------------------------------------------

# No test may reach the Hugging Face hub: models and tokenizers come from local folders only.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random-weight Llama + BPE tokenizer saved with save_pretrained (tests/tiny_model.py)."""
    from tests.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture()
def fresh_backends():
    """Each test that patches a model gets its own load (and leaves no patched model behind)."""
    from tasks.generation.generate import clear_backend_cache

    clear_backend_cache()
    yield
    clear_backend_cache()
