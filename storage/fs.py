"""Where a run's bytes live: a local folder, as always, or any fsspec URL (`s3://bucket/prefix`).

`location(x)` turns an output folder, run folder or file given as a string into a `pathlib.Path`
(local: unchanged behaviour) or a `RemotePath` (a URL with a scheme). `RemotePath` offers the few
`pathlib.Path` methods the project uses (`/`, `name`, `parent`, `exists`, `glob`, `read_bytes`, …)
so most code reads either kind the same way; writes go through `storage.atomic`, which uploads a
remote file whole in one request. Credentials and endpoint come from the usual environment of the
fsspec backend (for S3: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`,
`AWS_ENDPOINT_URL`, or a profile).

Object stores have no rename and no lock. What replaces them:
- a file appears whole or not at all (one PUT), so no temp name is needed;
- `create` is a conditional put (`IfNoneMatch="*"` on S3): the first writer wins, the others get
  `FileExistsError` — a claim;
- `replace(data, tag)` overwrites only if the object still has the version `tag` that the writer
  read (`IfMatch` on S3), else raises `Conflict` — a compare-and-swap for the run index and the run
  lease. Other fsspec backends get a check-then-write there (not atomic; see the README).

A `RemotePath` has no `__fspath__`: `open()` or `os` functions cannot be handed one by mistake.
s3fs is not fork-safe, so a process forked from one that did remote storage I/O may not do any:
`filesystem()` refuses there. Spawned processes (the execution pool's workers, Dask's) start clean.
"""

from __future__ import annotations

import datetime as dt
import os
import posixpath
import re
from pathlib import Path, PurePosixPath
from typing import IO, Any, Union

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_S3_PROTOCOLS = ("s3", "s3a")
_used_by: int | None = None  # the pid that created a filesystem (s3fs: its event loop and sessions)
_forked_from: int | None = None  # set in a child forked from that process


class Conflict(Exception):
    """A conditional write found the object changed since it was read."""


class StorageInForkedChild(RuntimeError):
    """Storage I/O through fsspec was attempted in a forked child process."""


def _mark_forked() -> None:
    global _forked_from
    if _used_by is not None:
        _forked_from = _used_by


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_mark_forked)


def filesystem(protocol: str) -> Any:
    """The fsspec filesystem of `protocol`, without directory-listing caches (other processes
    write the same run: a cached listing would hide their shards)."""
    if _forked_from is not None:
        raise StorageInForkedChild(
            f"storage I/O ({protocol}://) in a process forked from pid {_forked_from}: s3fs is not fork-safe; "
            "read and write run storage in the parent (or a spawned process) only"
        )
    import fsspec

    global _used_by
    _used_by = os.getpid()
    return fsspec.filesystem(protocol, use_listings_cache=False)


def location(where: Union[str, os.PathLike, "RemotePath"]) -> "Location":
    """`where` as a `Path` (local) or a `RemotePath` (a URL; `file://` URLs are local paths)."""
    if isinstance(where, RemotePath):
        return where
    if isinstance(where, str) and _URL.match(where):
        if where.startswith("file://"):
            return Path(where[len("file://") :])
        return RemotePath(where)
    return Path(where)


def is_remote(where: Any) -> bool:
    return isinstance(location(where), RemotePath)


def unreachable(where: str | os.PathLike) -> str | None:
    """Why the storage at URL `where` cannot be used (missing backend package, unknown bucket, no
    credentials, no connection), or None when its root answers. Local paths: None."""
    root = location(where)
    if not isinstance(root, RemotePath):
        return None
    top = RemotePath(f"{root.protocol}://{root.path.split('/', 1)[0]}")  # an S3 bucket, say
    try:
        if not top.exists():
            return f"{top} does not exist (create the bucket first)"
    except ImportError as exc:
        return f"no fsspec backend for {root.protocol}:// ({exc}); install it, e.g. pip install s3fs"
    except Exception as exc:  # noqa: BLE001 - any backend error is the answer
        return f"cannot reach {top}: {exc}"
    return None


def relative(path: "Location", base: "Location") -> str:
    """`path` relative to the folder `base`, with forward slashes (for links in a report)."""
    if isinstance(path, RemotePath) and isinstance(base, RemotePath):
        return posixpath.relpath(path.path, base.path)
    return Path(os.path.relpath(path, base)).as_posix()


class RemotePath:
    """A file or folder at an fsspec URL, with the subset of `pathlib.Path` the project uses."""

    __slots__ = ("url",)

    def __init__(self, url: str):
        if not _URL.match(url):
            raise ValueError(f"not a URL: {url!r}")
        scheme, rest = url.split("://", 1)
        self.url = f"{scheme.lower()}://{rest.rstrip('/')}"

    # --- naming ----------------------------------------------------------------------------------
    @property
    def protocol(self) -> str:
        return self.url.split("://", 1)[0]

    @property
    def path(self) -> str:
        """The path as the filesystem names it (no scheme), e.g. `bucket/prefix/file`."""
        return self.url.split("://", 1)[1]

    @property
    def fs(self) -> Any:
        return filesystem(self.protocol)

    def __truediv__(self, other: str | os.PathLike) -> "RemotePath":
        part = str(other).strip("/")
        return RemotePath(f"{self.url}/{part}") if part else self

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name

    @property
    def stem(self) -> str:
        return PurePosixPath(self.path).stem

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.path).suffix

    @property
    def parent(self) -> "RemotePath":
        parent = posixpath.dirname(self.path)
        return RemotePath(f"{self.protocol}://{parent}") if parent else self

    def with_suffix(self, suffix: str) -> "RemotePath":
        return self.parent / (self.stem + suffix)

    def resolve(self) -> "RemotePath":
        return self

    def as_posix(self) -> str:
        return self.url

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"RemotePath({self.url!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemotePath) and other.url == self.url

    def __lt__(self, other: "RemotePath") -> bool:
        return self.url < other.url

    def __hash__(self) -> int:
        return hash(self.url)

    # --- reading ---------------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.fs.exists(self.path)

    def is_file(self) -> bool:
        return self.fs.isfile(self.path)

    def is_dir(self) -> bool:
        return self.fs.isdir(self.path)

    def glob(self, pattern: str) -> list["RemotePath"]:
        return sorted(RemotePath(f"{self.protocol}://{p}") for p in self.fs.glob(f"{self.path}/{pattern}"))

    def iterdir(self) -> list["RemotePath"]:
        return sorted(RemotePath(f"{self.protocol}://{p}") for p in self.fs.ls(self.path, detail=False))

    def open(self, mode: str = "rb") -> IO:
        return self.fs.open(self.path, mode)

    def read_bytes(self) -> bytes:
        # s3fs asks for the size first (a HEAD) to fetch big objects in parallel parts; run files
        # are small enough for one GET.
        return self.fs.cat_file(self.path, **({"max_concurrency": 1} if self.protocol in _S3_PROTOCOLS else {}))

    def read_text(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return self.read_bytes().decode(encoding, errors)

    def info(self) -> dict[str, Any]:
        return self.fs.info(self.path)

    def read_tagged(self) -> tuple[bytes, str, dt.datetime | None]:
        """(content, version tag, last modified) read consistently; FileNotFoundError if absent."""
        while True:
            try:
                with self.fs.open(self.path, "rb") as fh:
                    data = fh.read()  # s3fs reads with IfMatch on the ETag it found when opening
                    details = getattr(fh, "details", None) or self.info()
                return data, _tag(details), _modified(details)
            except OSError as exc:
                if type(exc).__name__ != "FileExpired":  # s3fs: rewritten between opening and reading
                    raise

    # --- writing (whole objects: see storage.atomic for files written by libraries) -------------------
    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        """Object stores have no folders: a key's prefix exists once a key is written under it."""
        if self.protocol not in _S3_PROTOCOLS:
            self.fs.makedirs(self.path, exist_ok=True)

    def write_bytes(self, data: bytes) -> None:
        self.fs.pipe_file(self.path, data)

    def put_file(self, local: str | os.PathLike) -> None:
        self.fs.put_file(os.fspath(local), self.path)

    def create(self, data: bytes) -> str:
        """Write only if nothing is there yet (FileExistsError otherwise); returns the new tag."""
        reply = self.fs.pipe_file(self.path, data, mode="create")
        return _reply_tag(reply) or _tag(self.info())

    def replace(self, data: bytes, tag: str) -> str:
        """Overwrite only if the object still has version `tag` (else Conflict); returns the new tag."""
        if self.protocol in _S3_PROTOCOLS:
            try:
                reply = self.fs.pipe_file(self.path, data, IfMatch=tag)
            except FileNotFoundError as exc:
                raise Conflict(f"{self.url} vanished") from exc
            except OSError as exc:
                if not _precondition_failed(exc):
                    raise
                raise Conflict(f"{self.url} changed since it was read") from exc
            return _reply_tag(reply) or _tag(self.info())
        if _tag(self.info()) != tag:
            raise Conflict(f"{self.url} changed since it was read")
        self.write_bytes(data)
        return _tag(self.info())

    def delete_if(self, tag: str) -> bool:
        """Delete only if the object still has version `tag`; False if it changed or is gone."""
        if self.protocol in _S3_PROTOCOLS:
            bucket, key, _ = self.fs.split_path(self.path)
            try:
                self.fs.call_s3("delete_object", Bucket=bucket, Key=key, IfMatch=tag)
            except (FileNotFoundError, OSError) as exc:
                if isinstance(exc, FileNotFoundError) or _precondition_failed(exc):
                    return False
                raise
            finally:
                self.fs.invalidate_cache(self.path)
            return True
        try:
            if _tag(self.info()) != tag:
                return False
        except FileNotFoundError:
            return False
        self.fs.rm_file(self.path)
        return True

    def unlink(self, missing_ok: bool = False) -> None:
        if not missing_ok and not self.exists():
            raise FileNotFoundError(self.url)
        try:
            self.fs.rm_file(self.path)
        except FileNotFoundError:
            if not missing_ok:
                raise


def _precondition_failed(exc: OSError) -> bool:
    # s3fs turns a 412 into OSError(EINVAL, "At least one of the pre-conditions ... did not hold").
    return "pre-condition" in str(exc).lower() or "precondition" in str(exc).lower()


def _reply_tag(reply: Any) -> str | None:
    return reply.get("ETag") if isinstance(reply, dict) else None


def _tag(info: dict[str, Any]) -> str:
    for key in ("ETag", "etag", "generation", "mtime", "LastModified", "created"):
        if info.get(key) is not None:
            return str(info[key])
    return str(info.get("size"))


def _modified(info: dict[str, Any]) -> dt.datetime | None:
    value = info.get("LastModified") or info.get("mtime") or info.get("updated")
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, dt.timezone.utc)
    return None


Location = Union[Path, RemotePath]  # what `location()` returns: a local path or a URL
