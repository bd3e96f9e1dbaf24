"""Lightning wrappers (kept apart from the plain-torch core)."""

from ssmri.lit.module import ReconstructionModule

__all__ = ["ReconstructionModule"]
