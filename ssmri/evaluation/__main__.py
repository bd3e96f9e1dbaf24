"""``python -m ssmri.evaluation --predictions <dir> --targets <dir>``: :mod:`ssmri.evaluation.folders`."""

import sys

from ssmri.evaluation.folders import main

sys.exit(main())
