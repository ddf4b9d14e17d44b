"""``buttress demo``: a flaky dependency called bare and through a pipeline, side by side.

The command line calls :func:`add_arguments` and :func:`run_from_args`; :func:`run_demo` is the
same run as a coroutine that returns the numbers instead of printing them.
"""

from buttress.demo._cli import add_arguments, run, run_from_args
from buttress.demo._dependency import Behaviour, DependencyError, FlakyDependency, Outcome, Phase
from buttress.demo._runner import (
    DemoConfig,
    DemoResult,
    SecondRow,
    SideResult,
    Tally,
    build_pipeline,
    run_demo,
)

__all__ = [
    "Behaviour",
    "DemoConfig",
    "DemoResult",
    "DependencyError",
    "FlakyDependency",
    "Outcome",
    "Phase",
    "SecondRow",
    "SideResult",
    "Tally",
    "add_arguments",
    "build_pipeline",
    "run",
    "run_demo",
    "run_from_args",
]
