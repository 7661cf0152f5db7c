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


# --- object storage ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on a free localhost port for the session (tests/s3_server.py); the AWS
    variables pointing at it are set in this process's environment, so subprocesses inherit them."""
    from tests import s3_server as moto_s3

    server, env = moto_s3.start()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield server
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    server.stop()


@pytest.fixture()
def s3_bucket(s3_server):
    """A fresh, empty bucket: its URL, `s3://name`."""
    from tests import s3_server as moto_s3

    moto_s3.allow_writes(s3_server)
    yield moto_s3.new_bucket(dict(os.environ))
    moto_s3.allow_writes(s3_server)
