"""Checkpoint files: what ssmri writes, what it reads back, and what a file may name.

:mod:`~ssmri.checkpoints.load` reads a checkpoint as data only;
:mod:`~ssmri.checkpoints.legacy_targets` maps the import paths older layouts recorded to today's;
:mod:`~ssmri.checkpoints.trusted_targets` is the allow-list every ``_target_`` read from a file
must pass; :mod:`~ssmri.checkpoints.io` is the Lightning ``CheckpointIO`` that writes them
atomically; :mod:`~ssmri.checkpoints.resume` checks a resume against the settings a checkpoint
records. ``python -m ssmri.checkpoints convert old.ckpt new.ckpt`` re-saves a trusted old file.
"""
