"""``python -m buttress``: the same as the ``buttress`` console script."""

import sys

from buttress._command import main

sys.exit(main())
