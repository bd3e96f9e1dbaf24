"""The job runner: the Hydra entry points and what a training, evaluation or prediction job does.

:mod:`~ssmri.runner.cli` holds ``ssmri-train``, ``ssmri-eval`` and ``ssmri-predict`` (which
``train.py``, ``eval.py`` and ``predict.py`` call); :mod:`~ssmri.runner.run` builds a job from
its composed config, fits, tests and writes the run's outputs; :mod:`~ssmri.runner.predict`
reconstructs scans with a trained checkpoint. Before anything is built,
:mod:`~ssmri.runner.validation` refuses config values that cannot be right and
:mod:`~ssmri.runner.preflight` checks folders, disk and memory; :mod:`~ssmri.runner.distributed`
scopes one job to its GPUs and ranks, and :mod:`~ssmri.runner.resolvers` registers the
``${ssmri.*:}`` config resolvers. This is the Lightning/Hydra edge: it builds the plain-torch
core (physics, transforms, models, losses, data sources) from configs, and nothing in the core
imports it. Importing this package imports nothing else; each module imports what it needs.
"""
