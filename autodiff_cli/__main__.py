"""``python -m autodiff_cli`` runs the ``autodiff`` command."""

import sys

from .commands import main

sys.exit(main())
