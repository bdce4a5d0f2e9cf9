"""`python -m tui`: the same as the `nsm-tui` console script."""

import sys

from tui.cli import main

sys.exit(main())
