"""Process-wide choices of a serving process (``python -m app serve``), made once its app has started.

They belong to the process, not to an app: the test suite builds hundreds of apps in one process
and keeps the interpreter's defaults.
"""

from __future__ import annotations

import gc

__all__ = ["tune_garbage_collector"]


def tune_garbage_collector() -> None:
    """Move everything alive at start-up (modules, the app, routes) out of the cyclic collector's reach.

    Those objects live as long as the process, yet every full collection walked them again: with
    many sockets opening, collections triggered by their allocations were a large share of connect
    CPU. The thresholds are raised for the same reason: with thousands of sockets alive, the default
    ones ran a full collection often enough that its pauses (40-200 ms) were the p99 of a courier
    fleet's pings (55-73 ms at 1,000 pings/s; 41 ms with these; idle memory per socket 15.7 ->
    16.9 KiB). Runs as the app's last start-up hook, after the runtime has built everything.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 50)
