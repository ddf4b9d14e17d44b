"""The benchmark suite of buttress: hot paths measured beside their peers, in one process and run.

Run ``python -m benchmarks`` (or ``python3 dev.py bench``) to measure everything and rewrite
``docs/benchmarks.md``; ``python -m benchmarks --quick`` is a short smoke run that writes nothing
unless ``--write`` is given. One module per hot path (``bench_breaker``, ``bench_retry``,
``bench_pipeline``) describes its tables; ``_harness`` measures and renders them.
"""
