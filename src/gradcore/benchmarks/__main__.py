"""``python -m gradcore.benchmarks [--group G] [--only W] [--budget S] [--json F]``: the ratio report."""

import sys

from .report import main

sys.exit(main())
