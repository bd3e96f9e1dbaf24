"""Results: a run's outputs, a sweep's table and figures, and the one atomic writer they share.

``python -m ssmri.report <sweep_dir>`` rebuilds the table of a sweep directory.
"""

from ssmri.atomic import atomic_write, write_json, write_text
from ssmri.report.figures import save_curves, save_samples, save_sweep_samples
from ssmri.report.run_outputs import read_per_image, save_tensors, write_per_image
from ssmri.report.sweep import SweepReport, paired_sign_flip_test, summarise_sweep, write_sweep_results

__all__ = [
    "SweepReport",
    "atomic_write",
    "paired_sign_flip_test",
    "read_per_image",
    "save_curves",
    "save_samples",
    "save_sweep_samples",
    "save_tensors",
    "summarise_sweep",
    "write_json",
    "write_per_image",
    "write_sweep_results",
    "write_text",
]
