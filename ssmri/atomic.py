"""The one way ssmri writes a file: all of it or none of it, never half a file.

Every writer (run outputs, sweep table and figures, the k-space cache, the benchmark table)
goes through :func:`atomic_write`, so a run killed mid-write leaves the previous file, or
none, and nothing a later run would read as complete.
"""

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_write(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write; on success it replaces ``path``.

    The temporary file sits in the same folder (so the rename cannot cross file systems),
    is flushed to disk before ``os.replace`` puts it in place, and is removed if the writer
    raises. Its name ends in ``.tmp``: a writer that infers the format from the extension
    (``savefig``) must be given the format.

    Example::

        with atomic_write(run_dir / "samples.pt") as temporary:
            torch.save(samples, temporary)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # pid and a random token: two processes, or two threads, never share a temporary file.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        yield temporary
        _fsync(temporary)
        os.replace(temporary, path)
        _fsync(path.parent)  # makes the rename itself survive a crash
    finally:
        temporary.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically; returns ``path``."""
    with atomic_write(path) as temporary:
        temporary.write_text(text)
    return Path(path)


def write_json(path: Path, value) -> Path:
    """Write ``value`` as indented JSON with sorted keys, atomically; returns ``path``.

    NaN and infinities are refused (``ValueError`` naming the file): they are not JSON, and a
    result that cannot be right must not reach a results file as a number.
    """
    try:
        text = json.dumps(value, indent=2, sort_keys=True, allow_nan=False)
    except ValueError as error:
        raise ValueError(
            f"refusing to write {path}: it would hold a NaN or infinite number ({error})"
        ) from None
    return write_text(path, text + "\n")
