"""``python -m examples.orders_service``: the service's command line."""

import sys

from examples.orders_service.service import build_app

from buttress.cli import main

sys.exit(main(build_app()))
