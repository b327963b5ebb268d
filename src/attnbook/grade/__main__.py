"""``python -m attnbook.grade``: see ``attnbook.grade.cli``."""

import sys

from attnbook.grade.cli import main

sys.exit(main())
