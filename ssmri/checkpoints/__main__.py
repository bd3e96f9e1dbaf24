"""``python -m ssmri.checkpoints convert old.ckpt new.ckpt``: see :func:`ssmri.checkpoints.load.main`."""

import sys

from ssmri.checkpoints.load import main

sys.exit(main())
