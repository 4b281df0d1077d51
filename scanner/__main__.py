"""``python -m scanner ...``: the same as ``celltrail scan ...`` without the server packages."""

import sys

from scanner.cli import main

sys.exit(main())
