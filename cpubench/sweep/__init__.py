"""A sweep on this host: the planner (what is still to do), progress lines, real-data planning, and the session that
ties the plan, the executor, the locks and the store together for ``cpubench run``.

May import :mod:`cpubench.execution`, :mod:`cpubench.results`, :mod:`cpubench.spec` and :mod:`cpubench.host`;
never :mod:`cpubench.render` or :mod:`cpubench.analysis`.
"""
