"""Atomic file writes: a killed run never leaves a half file that looks whole.

A local file is written to a temp name beside it, fsynced and renamed over the destination. On
object storage (`storage.fs.RemotePath`) there is no rename, and none is needed: the file is
written to local scratch, then uploaded in one request, and the object appears whole or not at all.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from storage.fs import RemotePath, location


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike | RemotePath) -> Iterator[Path]:
    """Yield a local temp path; on success move it to `path` (rename, or one upload when remote).

    On any error (including ENOSPC) the temp file is removed and the error propagates, so the
    destination either keeps its old content or does not exist.
    """
    dest = location(path)
    if isinstance(dest, RemotePath):
        with _uploaded(dest) as tmp:
            yield tmp
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        # Name the destination: "No space left on device" alone does not say which file failed.
        raise OSError(exc.errno, f"cannot write {dest}: {exc.strerror or exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _uploaded(dest: RemotePath) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="taco-eval-upload-") as scratch:
        tmp = Path(scratch) / dest.name
        yield tmp
        try:
            dest.put_file(tmp)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot write {dest}: {exc.strerror or exc}") from exc


def write_bytes(path: str | os.PathLike | RemotePath, data: bytes, *, once: bool = False) -> None:
    """`once`: on object storage, a conditional create — the first writer wins, a later one gets
    FileExistsError (what makes a seal a claim); a local file is replaced as always."""
    dest = location(path)
    if isinstance(dest, RemotePath):
        if once:
            dest.create(data)
        else:
            dest.write_bytes(data)
        return
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike | RemotePath, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike | RemotePath, obj: Any, *, once: bool = False) -> None:
    data = (json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False) + "\n").encode("utf-8")
    write_bytes(path, data, once=once)
