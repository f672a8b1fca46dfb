"""A shorter thread switch interval while workers share the GIL with the event loop.

CPython hands the GIL to a waiting thread only after the holder has run for the switch interval
(5 ms by default). The app has two kinds of worker that suffer from it:

- CPU-bound jobs (writing shards): every time the event loop wakes up it waits up to 5 ms for
  the GIL, and a frame needs several wake-ups, so frames stall visibly;
- I/O-bound streams (previews over S3 and PDS blobs): every socket call gives the GIL away and
  waits up to 5 ms to get it back while the event loop is drawing, so one ranged GET through
  botocore (a dozen socket calls) took ~90 ms on screen against ~10 ms in a quiet process.

1 ms keeps both short for a few percent of a CPU-bound writer's throughput. The setting is
process-wide, so it is reference-counted: shortened while any such worker runs, restored when
the last one ends.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: The switch interval while a worker runs (seconds).
BUSY_SWITCH_INTERVAL = 0.001

_lock = threading.Lock()
_users = 0
_saved: float | None = None


@contextmanager
def short_switch_interval() -> Iterator[None]:
    """Run the body with the switch interval at most ``BUSY_SWITCH_INTERVAL``."""
    global _users, _saved
    with _lock:
        _users += 1
        if _users == 1:
            _saved = sys.getswitchinterval()
            sys.setswitchinterval(min(_saved, BUSY_SWITCH_INTERVAL))
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and _saved is not None:
                sys.setswitchinterval(_saved)
                _saved = None
