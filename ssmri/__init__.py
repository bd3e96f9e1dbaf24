"""ssmri: self-supervised accelerated MRI reconstruction with MoDL, Hydra and Lightning."""

__version__ = "0.1.0"
