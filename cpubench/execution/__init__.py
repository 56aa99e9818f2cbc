"""Running engine children: one way to start a group (one process measuring one or more batch sizes), alone or as
an ensemble of pinned groups started together, and to turn what each did into records.

May import :mod:`cpubench.results`, :mod:`cpubench.spec` and :mod:`cpubench.host`; not the sweep that drives it,
not analysis or rendering.
"""
