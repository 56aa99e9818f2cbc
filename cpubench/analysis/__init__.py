"""Data in, data out: run records into points, cells, framework comparisons and ratio statistics.

No file is written and no text is formatted for a reader here. May import :mod:`cpubench.results`,
:mod:`cpubench.spec` and :mod:`cpubench.host`; never :mod:`cpubench.render`.
"""
