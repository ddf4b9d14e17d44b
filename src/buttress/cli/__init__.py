"""The command line of an App, built with click: ``run`` (the default), ``config show``,
``config check``, and every module's flags.

Needs the ``cli`` extra (click). See ``docs/app.md``.
"""

from buttress.cli._cli import main, make_cli

__all__ = ["main", "make_cli"]
