"""Import paths that older layouts of the package wrote into checkpoints and run folders.

When a class moves, its old dotted path is added to :data:`LEGACY_TARGETS`; :func:`upgrade_targets`
maps a recorded config to today's layout, so files written before the move still evaluate and
resume. Kept apart from loading and from the allow-list, which both use it.
"""

from typing import Any

#: Import paths of earlier layouts -> today's, the first match applied. Prefixes (ending in ".")
#: map every name of a moved module; exact names come first where one name left its module's fellows.
LEGACY_TARGETS: dict[str, str] = {
    # What a loss does to data, once part of ``ssmri.physics``.
    "ssmri.physics.transforms.": "ssmri.transforms.image.",
    "ssmri.physics.kspace_augment.": "ssmri.transforms.kspace.",
    "ssmri.physics.splitting.": "ssmri.transforms.split_masks.",
    "ssmri.physics.KspaceCompose": "ssmri.transforms.KspaceCompose",
    "ssmri.physics.KspaceNoise": "ssmri.transforms.KspaceNoise",
    "ssmri.physics.RandomPhaseError": "ssmri.transforms.RandomPhaseError",
    # Checkpoint files, once top-level modules.
    "ssmri.checkpoint.": "ssmri.checkpoints.load.",
    "ssmri.checkpoint_io.": "ssmri.checkpoints.io.",
    "ssmri.resume.": "ssmri.checkpoints.resume.",
    "ssmri.trusted_targets.": "ssmri.checkpoints.trusted_targets.",
    # Evaluation, once top-level modules; a run folder's record names its selection rule and
    # the callback that applies it.
    "ssmri.validation.check_metrics": "ssmri.evaluation.metrics.check_metrics",
    "ssmri.metrics.": "ssmri.evaluation.metrics.",
    "ssmri.conventions.": "ssmri.evaluation.conventions.",
    "ssmri.selection.": "ssmri.evaluation.selection_rules.",
    "ssmri.evaluate.": "ssmri.evaluation.folders.",
    "ssmri.lit.selection.": "ssmri.lit.selection_checkpoints.",
    # The job runner, once top-level modules; a run's hydra.yaml names its output-folder callback.
    "ssmri.validation.open_hdf5": "ssmri.data.checks.open_hdf5",
    "ssmri.validation.check_images": "ssmri.data.checks.check_images",
    "ssmri.validation.": "ssmri.runner.validation.",
    "ssmri.run.": "ssmri.runner.run.",
    "ssmri.cli.": "ssmri.runner.cli.",
    "ssmri.distributed.": "ssmri.runner.distributed.",
    "ssmri.resolvers.": "ssmri.runner.resolvers.",
    "ssmri.preflight.": "ssmri.runner.preflight.",
    "ssmri.predict.": "ssmri.runner.predict.",
}


def upgrade_target(target: str) -> str:
    """Today's import path for ``target``, which may have been written by an older layout."""
    for old, new in LEGACY_TARGETS.items():
        if old.endswith("."):
            if target.startswith(old):
                return new + target[len(old) :]
        elif target == old:
            return new
    return target


def upgrade_targets(node: Any) -> Any:
    """A copy of a plain config container with every ``_target_`` mapped to today's layout."""
    if isinstance(node, dict):
        return {
            key: upgrade_target(value)
            if key == "_target_" and isinstance(value, str)
            else upgrade_targets(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [upgrade_targets(value) for value in node]
    return node
