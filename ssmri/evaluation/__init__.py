"""Evaluation: how reconstructions are scored and which weights a run tests.

:mod:`~ssmri.evaluation.metrics` computes PSNR, SSIM and NMSE per image,
:mod:`~ssmri.evaluation.conventions` says how they are ranged and averaged,
:mod:`~ssmri.evaluation.selection_rules` holds the checkpoint-selection rules (the Lightning
callback that applies them is :class:`ssmri.lit.selection_checkpoints.SelectionCheckpoints`),
and :mod:`~ssmri.evaluation.folders` scores a folder of reconstructions made anywhere:
``python -m ssmri.evaluation --predictions <folder> --targets <folder>``. Plain torch; no
Lightning or Hydra.
"""
