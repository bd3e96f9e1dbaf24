"""What ssmri reads back from its checkpoints: safely, and across changes of the package's layout.

Checkpoints are data, never code: :func:`load_checkpoint` reads them with ``weights_only=True``
(tensors and plain containers only), so a file with a pickled payload is refused before any
of it runs. A trusted checkpoint of an older kind converts once with::

    python -m ssmri.checkpoints convert old.ckpt new.ckpt

A checkpoint stores the method's loss and network as Hydra configs whose ``_target_`` strings
name import paths, and a run folder's ``.hydra/config.yaml`` names its callbacks and selection
rule the same way. When a class moves, :mod:`ssmri.checkpoints.legacy_targets` maps the paths
written by older versions to today's, so checkpoints and run folders written before a move
still evaluate and resume.
"""

import argparse
import errno
import io
import os
import re
import stat
import sys
from pathlib import Path
from typing import Any

import torch

from ssmri.atomic import atomic_write
from ssmri.checkpoints.trusted_targets import is_method_name
from ssmri.errors import CheckpointError


def checkpoint_method(path: str | None) -> str:
    """The method (loss name) a checkpoint was trained with, for naming its evaluation's folder.

    Reads only the checkpoint's small metadata (memory-mapped, ``weights_only``); any file that
    cannot be read this way gives ``"unknown"``; evaluation itself then reports the problem.
    """
    import torch

    if not path:
        return "unknown"
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - naming a folder must never be the error a user sees
        return "unknown"
    hyper_parameters = state.get("hyper_parameters") if isinstance(state, dict) else None
    method = hyper_parameters.get("method") if isinstance(hyper_parameters, dict) else None
    # The name becomes a folder: a path or markup in it must not choose where eval writes.
    return method if is_method_name(method) else "unknown"


CONVERT = "python -m ssmri.checkpoints convert {path} <new.ckpt>"
MISSING = "does not exist"


def file_problem(path) -> str | None:
    """What keeps ``path`` from being read as a checkpoint file, in words; None for a regular file.

    ``Path.is_file()`` says False alike for a missing file, a directory and a symbolic link
    loop, which then read as "does not exist"; this tells them apart.
    """
    path = Path(path).expanduser()
    try:
        status = path.stat()
    except OSError as error:
        if error.errno == errno.ELOOP:
            return (
                "is a symbolic link loop (links that point back to themselves); point it at "
                "the .ckpt file itself"
            )
        if error.errno == errno.ENOENT and path.is_symlink():
            return f"is a symbolic link to {os.readlink(path)!r}, which {MISSING}"
        if error.errno == errno.ENOENT:
            return MISSING
        return f"cannot be read ({error.strerror or error})"
    if stat.S_ISDIR(status.st_mode):
        return (
            f"is a directory, not a checkpoint file; pass a .ckpt file inside it, e.g. "
            f"{path / 'checkpoints' / 'best.ckpt'}"
        )
    if not stat.S_ISREG(status.st_mode):
        return "is not a regular file (a device, pipe or socket); pass a .ckpt file"
    return None


def load_checkpoint(path, key: str = "ckpt_path") -> dict:
    """The checkpoint at ``path`` as tensors and plain containers; never runs code from it.

    Raises :class:`CheckpointError` (naming ``key``, the config key that gave the path) for a
    file that holds other Python objects (with the command that converts a trusted one), a
    truncated or foreign file, and one that is not a Lightning checkpoint of a network.
    """
    path = Path(path).expanduser()
    problem = file_problem(path)
    if problem not in (None, MISSING):
        raise CheckpointError(f"{key}={str(path)!r} {problem}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{key}={str(path)!r}: no such file") from None
    except Exception as error:  # noqa: BLE001 - every way torch.load fails becomes one line
        text = str(error)
        found = re.search(r"(unsupported GLOBAL [^\s]+|Unsupported (global|class)[^\n]+)", text)
        if text.startswith("Weights only load failed") and found:
            what = f" ({found.group(1).rstrip('.')})"
            raise CheckpointError(
                f"{key}={str(path)!r} holds Python objects besides tensors and plain "
                f"containers{what}; loading it could run code, so it is refused. If you trust "
                f"the file, convert it once: {CONVERT.format(path=path)}"
            ) from None
        first = text.splitlines()[0].split(". ")[0] if text else "empty file"
        if text.startswith("Weights only load failed"):
            first = re.sub(r"\s+", " ", text.split("\n\n")[1] if "\n\n" in text else first).strip()
        raise CheckpointError(
            f"{key}={str(path)!r} is not a readable PyTorch checkpoint (truncated, corrupted or "
            f"another format: {type(error).__name__}: {first}); if it is a trusted checkpoint "
            f"in an old format, {CONVERT.format(path=path)} converts it"
        ) from None
    if not isinstance(state, dict) or not isinstance(state.get("state_dict"), dict):
        raise CheckpointError(
            f"{key}={str(path)!r} is not a Lightning checkpoint: it has no state_dict of weights"
        )
    return state


def plain(value: Any, where: str = "checkpoint") -> Any:
    """``value`` as tensors and built-in containers, what ``weights_only=True`` loads."""
    if isinstance(value, torch.Tensor) or value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if isinstance(value, dict) or hasattr(value, "items"):
        return {key: plain(item, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        items = [plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    if type(value).__module__ == "numpy":
        return torch.as_tensor(value) if getattr(value, "ndim", 0) else value.item()
    if isinstance(value, Path):
        return str(value)
    if type(value).__name__ in ("ListConfig", "Namespace"):
        return plain(list(value) if hasattr(value, "__iter__") else vars(value), where)
    raise CheckpointError(
        f"{where} is a {type(value).__module__}.{type(value).__qualname__}, which has no plain "
        f"form; this checkpoint cannot be converted"
    )


def convert(source, target) -> Path:
    """Re-save a TRUSTED checkpoint with tensors and plain containers only.

    The one place ssmri loads with ``weights_only=False``: it runs whatever the file holds,
    so only call it on a file whose origin you trust.
    """
    state = torch.load(Path(source).expanduser(), map_location="cpu", weights_only=False)
    converted = plain(state)
    buffer = io.BytesIO()
    torch.save(converted, buffer)
    torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)  # it now loads safely
    target = Path(target).expanduser()
    with atomic_write(target) as temporary:
        temporary.write_bytes(buffer.getvalue())
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ssmri.checkpoints",
        description="Convert a trusted checkpoint that loads only unsafely into one that loads "
        "with weights_only=True. Loading the old file runs any code it holds: trusted files only.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    conversion = commands.add_parser("convert", help="re-save a trusted checkpoint as plain data")
    conversion.add_argument("source")
    conversion.add_argument("target")
    arguments = parser.parse_args(argv)
    try:
        written = convert(arguments.source, arguments.target)
    except CheckpointError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {written}; it loads with weights_only=True")
    return 0


def check_weights_fit(module, checkpoint: dict, path) -> None:
    """Raise :class:`CheckpointError` unless ``checkpoint``'s weights fit ``module`` exactly."""

    def shapes(state: dict) -> dict:  # extra state (e.g. a GAN's cached reals) is not a tensor
        return {name: tuple(value.shape) for name, value in state.items() if isinstance(value, torch.Tensor)}

    expected, stored = shapes(module.state_dict()), shapes(checkpoint["state_dict"])
    missing, unexpected = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
    resized = [
        f"{name} {stored[name]} vs {shape}"
        for name, shape in expected.items()
        if name in stored and stored[name] != shape
    ]
    if missing or unexpected or resized:
        found = "; ".join(
            part
            for part in (
                f"missing {missing[:3]}" if missing else "",
                f"unexpected {unexpected[:3]}" if unexpected else "",
                f"shapes differ: {resized[:3]}" if resized else "",
            )
            if part
        )
        raise CheckpointError(
            f"ckpt_path={str(path)!r}: its weights do not fit the configured network ({found}); "
            f"use the model settings it was trained with"
        )
