"""`python -m latentsci.cli`: the same command as `latentsci`."""

import sys

from latentsci.cli import main

sys.exit(main())
