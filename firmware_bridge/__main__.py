"""``python -m firmware_bridge bridge|simulate``: the two verbs without the full ``celltrail`` CLI."""

import sys

from firmware_bridge.cli import main

sys.exit(main())
