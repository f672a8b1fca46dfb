"""``python -m atdata_tui``: the same as the ``atdata-tui`` command."""

import sys

from .cli import main

sys.exit(main())
