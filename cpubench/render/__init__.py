"""Everything a person reads: markdown tables, plots, ``summary.md``, the Jekyll site, ``compare``'s text.

One module per kind of output; each takes what :mod:`cpubench.analysis` computed and writes it. May import
:mod:`cpubench.analysis` and the rooms below it; never :mod:`cpubench.sweep` or :mod:`cpubench.execution`.
"""
