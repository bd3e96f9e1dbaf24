"""``python -m ssmri.bench`` (``make bench``): throughput, efficiency and memory of every method.

``__main__`` is the command line (one fresh subprocess per measurement, results to
``bench/results.md``); ``ours`` builds and steps the ssmri side, ``reference`` the same work
in DeepInverse 0.5 (run only in an interpreter that has it); ``harness`` is the timing, FLOP
and memory protocol both share; ``report`` measures the matrix-multiply rate and writes the table.
"""
