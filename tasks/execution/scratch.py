"""Removing what a program left on disk, whatever shape it is in.

A hostile program can leave thousands of nested folders (a recursive remover overflows the stack,
and their paths pass PATH_MAX), folders without write or search permission, and symlinks pointing
at the evaluator's own files. `remove_tree` walks with file descriptors (no path grows with the
depth), one level at a time (no recursion), never follows a symlink, gives itself permission on
the program's folders, and never raises: what it cannot remove it reports.
"""

from __future__ import annotations

import os
import stat

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_dir(name: str, parent_fd: int | None) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except PermissionError:  # a folder the program made unreadable: it is ours to open again
        os.chmod(name, 0o700, dir_fd=parent_fd)  # a real folder: scandir said so, without following
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)


def _next_subdir(fd: int) -> str | None:
    """Unlink every non-folder entry of `fd`; return one subfolder's name, or None if none is left."""
    try:
        os.fchmod(fd, 0o700)  # write and search permission to delete entries
    except OSError:
        pass
    with os.scandir(fd) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                return entry.name
            os.unlink(entry.name, dir_fd=fd)
    return None


def remove_tree(path: str) -> str | None:
    """Delete `path` and everything under it; return None, or why something stayed."""
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            os.unlink(path)
            return None
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{path}: {exc}"
    # One open folder at a time (a deep tree must not need one fd per level): go down into a
    # subfolder by name and back up through "..", which nothing can move any more (the
    # program's processes are gone before its folders are removed).
    fd = None
    names: list[str] = []  # the folders entered below `path`'s parent, outermost first
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)), _DIR_FLAGS)
        names.append(os.path.basename(os.path.abspath(path)))
        fd = _enter(names[-1], fd)
        while names:
            sub = _next_subdir(fd)
            if sub is not None:
                fd = _enter(sub, fd)
                names.append(sub)
                continue
            fd = _enter("..", fd)
            os.rmdir(names.pop(), dir_fd=fd)
        return None
    except OSError as exc:
        return f"{path}: {exc}"
    finally:
        if fd is not None:
            os.close(fd)


def _enter(name: str, fd: int) -> int:
    """Open `name` below `fd`, then close `fd` (left open if `name` cannot be opened)."""
    new = _open_dir(name, fd)
    os.close(fd)
    return new
