"""Benchmarks: our figures next to their baselines, measured in the same run on the same machine.

Run them from the repository root::

    benchmarks/run                       # everything (= .venv/bin/python -m benchmarks)
    benchmarks/run --quick               # smaller inputs, a smoke test (~1.5 min; prints only)
    benchmarks/run --only shards         # one module (repeat --only, or commas, for several)
    benchmarks/run --list                # what there is

The runner prints a Markdown table (figure | ours | baseline | ratio | target | met? | peak RSS |
note) under the CPU model and Python version, and writes it to ``benchmarks/results.md``. Rows are
also kept in ``benchmarks/results.json``, one entry per module, so ``--only`` refreshes that
module's rows and keeps the others (each section says when and how it was measured). The exit
code is 1 if a module crashed or a target was missed, so CI can gate on it. ``--quick`` only
prints (``results.md`` keeps the last full run) and fails only when a module crashes: its small
inputs make the ratios too noisy to gate on.

Adding a benchmark
------------------
Create ``benchmarks/bench_<name>.py`` with::

    from benchmarks.common import Row, make_row, timed

    def run(quick: bool) -> list[Row]:
        ...
        return [make_row("read small samples", ours, "samples/s", baseline=wds,
                         baseline_name="webdataset", target=10 * wds, note="...")]

* ``run(quick)`` returns ``Row``s (see ``benchmarks/common.py``); ``quick`` means "finish in
  seconds": use smaller inputs, never different code paths.
* Measure the baseline in the same run on the same data: a ratio against a number from another
  machine is meaningless. If a baseline cannot run here, say so in ``note``, do not invent it.
* ``make_row`` computes ``met`` from ``target`` (``lower_is_better=True`` for latencies) and fills
  in the peak RSS; ``measure_in_child`` runs a function in a forked child when a figure needs its
  own peak RSS (ru_maxrss only ever grows within a process).
* Each module runs in its own interpreter (unless ``--in-process``), so one module's memory or
  crash does not affect another's figures. Put temporary files under ``tempfile`` directories and
  remove them.
"""
