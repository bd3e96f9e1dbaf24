"""What ssmri reads back from its checkpoints, across changes of the package's layout.

A checkpoint stores the method's loss and network as Hydra configs whose ``_target_`` strings
name import paths. When a class moves, :func:`upgrade_targets` maps the paths written by older
versions to today's, so checkpoints trained before a move still evaluate.
"""

from typing import Any

#: Import paths of earlier layouts -> today's. Prefixes map every class of a moved module.
LEGACY_TARGETS: dict[str, str] = {
    # Issue 9: what a loss does to data moved out of ``ssmri.physics``.
    "ssmri.physics.transforms.": "ssmri.transforms.image.",
    "ssmri.physics.kspace_augment.": "ssmri.transforms.kspace.",
    "ssmri.physics.splitting.": "ssmri.transforms.split_masks.",
    "ssmri.physics.KspaceCompose": "ssmri.transforms.KspaceCompose",
    "ssmri.physics.KspaceNoise": "ssmri.transforms.KspaceNoise",
    "ssmri.physics.RandomPhaseError": "ssmri.transforms.RandomPhaseError",
}


def upgrade_target(target: str) -> str:
    """Today's import path for ``target``, which may have been written by an older layout."""
    for old, new in LEGACY_TARGETS.items():
        if old.endswith("."):
            if target.startswith(old):
                return new + target[len(old):]
        elif target == old:
            return new
    return target


def upgrade_targets(node: Any) -> Any:
    """A copy of a plain config container with every ``_target_`` mapped to today's layout."""
    if isinstance(node, dict):
        return {
            key: upgrade_target(value) if key == "_target_" and isinstance(value, str)
            else upgrade_targets(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [upgrade_targets(value) for value in node]
    return node


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
    method = state.get("hyper_parameters", {}).get("method") if isinstance(state, dict) else None
    return str(method) if method else "unknown"
