"""The shorter switch interval is reference-counted: restored only when the last user ends."""

from __future__ import annotations

import sys
import threading

from atdata_tui.switching import BUSY_SWITCH_INTERVAL, short_switch_interval


def test_short_switch_interval_nests_and_restores() -> None:
    before = sys.getswitchinterval()
    assert before > BUSY_SWITCH_INTERVAL  # CPython's default, 5 ms
    with short_switch_interval():
        assert sys.getswitchinterval() == BUSY_SWITCH_INTERVAL
        with short_switch_interval():
            assert sys.getswitchinterval() == BUSY_SWITCH_INTERVAL
        assert sys.getswitchinterval() == BUSY_SWITCH_INTERVAL  # the outer user still runs
    assert sys.getswitchinterval() == before


def test_overlapping_workers_in_threads_restore_it_once_all_end() -> None:
    before = sys.getswitchinterval()
    entered, release = threading.Barrier(5), threading.Event()

    def worker() -> None:
        with short_switch_interval():
            entered.wait()
            release.wait()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    entered.wait()
    assert sys.getswitchinterval() == BUSY_SWITCH_INTERVAL
    release.set()
    for t in threads:
        t.join()
    assert sys.getswitchinterval() == before


def test_as_a_decorator_each_call_gets_its_own_scope() -> None:
    before = sys.getswitchinterval()
    seen: list[float] = []

    @short_switch_interval()
    def work() -> None:
        seen.append(sys.getswitchinterval())

    work()
    work()
    assert seen == [BUSY_SWITCH_INTERVAL, BUSY_SWITCH_INTERVAL]
    assert sys.getswitchinterval() == before
