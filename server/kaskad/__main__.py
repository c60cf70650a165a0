"""``python -m kaskad`` runs the ``kaskad`` command."""

import sys

from kaskad.cli import main

sys.exit(main())
