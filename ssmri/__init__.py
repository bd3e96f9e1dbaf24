"""ssmri: self-supervised accelerated MRI reconstruction with MoDL, Hydra and Lightning."""

__version__ = "0.1.0"

from ssmri.runner import resolvers  # noqa: E402,F401  (config resolvers, registered on import)
