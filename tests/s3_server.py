"""An S3 stand-in for tests: moto's server in a thread on a free localhost port (no network).

`start()` returns the server and the environment a client needs (the standard AWS variables,
`AWS_ENDPOINT_URL` pointing at the server); `new_bucket(env)` makes an empty bucket;
`requests(server)` counts what it answered, by HTTP method. A fault can
be injected per key: `deny_writes(server, "runs/…/results/shard-00001.parquet")` answers writes
to keys ending so with 403 AccessDenied, as a bucket policy would.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from typing import Any

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
    b"<Message>Access Denied (test fault)</Message></Error>"
)


class _Faults:
    """WSGI middleware in front of moto: refuses writes to chosen keys; counts requests by method."""

    def __init__(self, app: Any):
        self.app, self.denied_suffixes, self.requests = app, set(), Counter()

    def __call__(self, environ: dict, start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        self.requests[environ.get("REQUEST_METHOD", "?")] += 1
        if environ.get("REQUEST_METHOD") == "PUT" and any(path.endswith(s) for s in self.denied_suffixes):
            start_response(
                "403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(_DENIED)))]
            )
            return [_DENIED]
        return self.app(environ, start_response)


def start() -> tuple[Any, dict[str, str]]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    server._server.app = _Faults(server._server.app)
    return server, {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": f"http://{host}:{port}"}


def deny_writes(server: Any, key_suffix: str) -> None:
    server._server.app.denied_suffixes.add(key_suffix)


def allow_writes(server: Any) -> None:
    server._server.app.denied_suffixes.clear()


def client(env: dict[str, str]) -> Any:
    """A plain boto3 S3 client on the server (for what a test inspects: versions, last-modified)."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def requests(server: Any) -> Counter:
    """Requests the server has answered so far, by HTTP method."""
    return Counter(server._server.app.requests)


def new_bucket(env: dict[str, str], versioned: bool = False) -> str:
    """A fresh bucket; returns its URL (s3://name). `versioned`: every write of a key is kept as a
    version of its own, so a test can count how often a key was written."""
    name = f"taco-{uuid.uuid4().hex[:12]}"
    s3 = client(env)
    s3.create_bucket(Bucket=name)
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return f"s3://{name}"


def versions(env: dict[str, str], url: str) -> dict[str, list[str]]:
    """Key → version ids (newest first) of every object under `url` (s3://bucket/prefix)."""
    bucket, _, prefix = url[len("s3://") :].partition("/")
    out: dict[str, list[str]] = {}
    for page in client(env).get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for v in page.get("Versions", []):
            out.setdefault(v["Key"], []).append(v["VersionId"])
    return out
