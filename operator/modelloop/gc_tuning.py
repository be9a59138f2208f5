"""The garbage collector's thresholds for the long-running operator.

CPython collects its youngest generation every 700 net allocations by default. An
evaluation cycle of 1000 Models allocates millions of short-lived objects (decoded
answers, readings, verdicts) while the watch caches and parsed specs hold millions of
long-lived ones, so the collector ran over and over for little: ``make bench`` measured
3.4 CPU ms per Model per steady cycle with the defaults, 2.0 with these thresholds,
at the same RSS. Almost nothing here forms reference cycles (reference counting frees
it), so collecting less often holds no more memory.
"""

import gc

THRESHOLDS = (50_000, 20, 100)


def tune() -> None:
    """Applied by ``modelloop run``, and by the benchmark that measures its cycle."""
    gc.set_threshold(*THRESHOLDS)
