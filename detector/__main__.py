"""``python -m detector``: the command line (see detector.cli)."""

import sys

from detector.cli import main

if __name__ == "__main__":
    sys.exit(main())
