"""``python -m botkiln`` runs the CLI."""

import sys

from botkiln.infra.cli import main

sys.exit(main())
