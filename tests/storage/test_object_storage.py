"""Run storage on S3 (moto's server standing in): paths, whole-object writes, seals, the run index,
the run lease, and no storage I/O in forked children."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from storage.atomic import write_json, write_text
from storage.fs import Conflict, RemotePath, location
from storage.run_index import append_run, read_index
from storage.run_lock import RunLocked, run_lock
from storage.rundir import GENERATIONS, RunDir
from storage.tables import GENERATIONS_SCHEMA, read_rows, write_rows


def gen_row(task_id, idx, code):
    return {"task_id": task_id, "problem_id": f"p{task_id}", "sample_idx": idx, "completion": code, "code": code,
            "num_tokens": 3, "finish_reason": "stop", "seed": 1, "batch_size": 2}  # fmt: skip


def test_location_keeps_local_paths_and_names_urls(tmp_path):
    assert location(str(tmp_path)) == tmp_path and location("out") == location("out").__class__("out")
    assert location(f"file://{tmp_path}") == tmp_path
    remote = location("s3://bucket/prefix/")
    assert isinstance(remote, RemotePath) and str(remote) == "s3://bucket/prefix"
    shard = remote / "runs" / "abc" / "generations" / "shard-00001.parquet"
    assert (shard.name, shard.stem, shard.suffix) == ("shard-00001.parquet", "shard-00001", ".parquet")
    assert str(shard.with_suffix(".json")) == "s3://bucket/prefix/runs/abc/generations/shard-00001.json"
    assert shard.parent.parent == remote / "runs" / "abc"
    with pytest.raises(TypeError):
        open(shard)  # no __fspath__: a URL is never taken for a local file name


def test_files_roundtrip_and_list(s3_bucket):
    root = location(s3_bucket) / "out"
    assert not root.exists() and not root.is_dir()
    write_json(root / "a" / "x.json", {"k": 1})
    write_text(root / "a" / "y.json", "{}")
    rows = [gen_row(0, 0, "print(1)"), gen_row(0, 1, "print(2)")]
    write_rows(root / "a" / "g.parquet", rows, GENERATIONS_SCHEMA)
    assert root.is_dir() and (root / "a" / "x.json").is_file()
    assert json.loads((root / "a" / "x.json").read_text()) == {"k": 1}
    assert [p.name for p in (root / "a").glob("*.json")] == ["x.json", "y.json"]
    assert read_rows(root / "a" / "g.parquet") == rows
    (root / "a" / "y.json").unlink()
    (root / "a" / "y.json").unlink(missing_ok=True)
    with pytest.raises(FileNotFoundError):
        (root / "a" / "y.json").unlink()
    assert [p.name for p in (root / "a").iterdir()] == ["g.parquet", "x.json"]


def test_conditional_writes_are_claims_and_compare_and_swap(s3_bucket):
    obj = location(s3_bucket) / "claim"
    tag = obj.create(b"first")
    with pytest.raises(FileExistsError):
        obj.create(b"second")
    new_tag = obj.replace(b"third", tag)
    with pytest.raises(Conflict):
        obj.replace(b"fourth", tag)  # stale version
    assert obj.read_tagged()[:2] == (b"third", new_tag)
    assert not obj.delete_if(tag) and obj.exists()
    assert obj.delete_if(new_tag) and not obj.exists()


def test_seal_is_written_after_the_data_and_only_once(s3_bucket):
    rd = RunDir.under(s3_bucket + "/out", "run1")
    write_rows(rd.shard(GENERATIONS, 0), [gen_row(0, 0, "a")], GENERATIONS_SCHEMA)
    assert rd.sealed(GENERATIONS, 0) is None  # data without a seal is not trusted
    record = rd.seal(GENERATIONS, 0, {"samples": 1})
    assert rd.sealed(GENERATIONS, 0) == record
    # A second writer of identical data gets the first seal back (Dask re-running a finished task).
    assert rd.seal(GENERATIONS, 0, {"samples": 1, "other": True}) == record
    # Data rewritten under a seal: the shard is no longer trusted; sealing it again replaces the
    # stale seal with one that matches the data now there.
    write_rows(rd.shard(GENERATIONS, 0), [gen_row(0, 0, "b")], GENERATIONS_SCHEMA)
    assert rd.sealed(GENERATIONS, 0) is None
    again = rd.seal(GENERATIONS, 0, {"samples": 1})
    assert again["sha256"] != record["sha256"] and rd.sealed(GENERATIONS, 0) == again


def test_run_index_appends_race_free(s3_bucket):
    out = s3_bucket + "/out"
    errors = []

    def add(i):
        try:
            append_run(out, {"run_id": f"r{i}", "run_dir": f"{out}/runs/r{i}"})
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    append_run(out, {"run_id": "r0", "run_dir": "elsewhere"})  # one line per run id
    assert sorted(e["run_id"] for e in read_index(out)) == [f"r{i}" for i in range(6)]


def test_lease_excludes_a_second_holder_and_is_released(s3_bucket):
    lock = location(s3_bucket) / "runs" / "r" / "run.lock"
    with run_lock(lock, wait=False, lease_s=30):
        holder = json.loads(lock.read_text())
        assert holder["pid"] == os.getpid()
        with pytest.raises(RunLocked, match=f"pid {os.getpid()} on"):
            with run_lock(lock, wait=False, lease_s=30):
                pass
    assert not lock.exists()
    with run_lock(lock, wait=False, lease_s=30):  # free again
        pass


def test_waiting_claimer_gets_the_lease_when_the_holder_ends(s3_bucket):
    lock = location(s3_bucket) / "run.lock"
    order, waited = [], []
    entered = threading.Event()

    def second():
        entered.wait()
        with run_lock(lock, wait=True, on_wait=waited.append, poll_s=0.1, lease_s=30):
            order.append("second")

    t = threading.Thread(target=second)
    t.start()
    with run_lock(lock, wait=False, lease_s=30):
        entered.set()
        time.sleep(0.6)
        order.append("first")
    t.join(timeout=30)
    assert order == ["first", "second"] and waited and f"pid {os.getpid()}" in waited[0]


def test_renewed_lease_stays_and_a_stale_one_is_taken_over(s3_bucket):
    lock = location(s3_bucket) / "run.lock"
    # S3's last-modified has whole seconds: a lease much shorter than a few seconds could look
    # stale between renewals on a loaded machine.
    with run_lock(lock, wait=False, lease_s=4):
        time.sleep(5)  # past the lease time: the heartbeat (every second) renewed it
        assert json.loads(lock.read_text())["renewals"] >= 3
        with pytest.raises(RunLocked):
            with run_lock(lock, wait=False, lease_s=4):
                pass
    # A holder killed outright leaves its lease; once not renewed for lease_s it is taken over.
    lock.create(json.dumps({"host": "gone", "pid": 1, "started": "then", "lease_s": 1}).encode())
    with pytest.raises(RunLocked, match="pid 1 on gone"):
        with run_lock(lock, wait=False, lease_s=1):
            pass
    time.sleep(2.5)
    with run_lock(lock, wait=False, lease_s=30):
        assert json.loads(lock.read_text())["pid"] == os.getpid()


def test_forked_child_may_not_touch_remote_storage(s3_bucket):
    obj = location(s3_bucket) / "x"
    obj.write_bytes(b"parent")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what reading did, then leave at once
        try:
            obj.read_bytes()
            msg = b"read"
        except Exception as exc:  # noqa: BLE001 - the type is the message
            msg = type(exc).__name__.encode()
        os.write(w, msg)
        os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    assert os.read(r, 100) == b"StorageInForkedChild"
    assert obj.read_bytes() == b"parent"  # the parent is unaffected


def test_lease_of_a_killed_holder_on_this_host_is_taken_over_at_once(s3_bucket):
    import socket
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    lock = location(s3_bucket) / "run.lock"
    me = {"host": socket.gethostname(), "pid": dead_pid, "started": "then", "lease_s": 3600}
    lock.create(json.dumps(me).encode())
    with run_lock(lock, wait=False, lease_s=30):  # no waiting out the hour-long lease
        assert json.loads(lock.read_text())["pid"] == os.getpid()
