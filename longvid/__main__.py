"""``python -m longvid``."""

import sys

from longvid.cli import main

sys.exit(main())
