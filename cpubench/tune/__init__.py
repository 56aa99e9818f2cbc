"""tune: profile -> exact split -> verified by an ensemble run; may import sweep, render, execution, analysis, results,
spec, host.

:mod:`cpubench.tune.optimizer` is pure (numpy only, nothing of cpubench): given one instance's latency per
(threads, batch) point, it finds the exact best split of a core budget and a batch into concurrent instances.
"""
