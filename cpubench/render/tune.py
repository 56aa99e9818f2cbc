"""``cpubench tune``'s tables: the recommended split per batch size, and a verification's expected against measured.

Text from data (the profile's path, model and mode) goes through :mod:`cpubench.render.escape` like every other
rendered text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from cpubench.analysis.tune import Verification, verifications
from cpubench.render import escape, tables


def split_text(s: Any) -> str:
    """``2x(1 thr, bs 2) + 1x(2 thr, bs 4)``, or n/a."""
    return "n/a" if s is None else " + ".join(f"{i.count}x({i.threads} thr, bs {i.batch})" for i in s.instances)


def _ms(x: float | None) -> str:
    return tables.MISSING if x is None else f"{x:.2f}"


def recommendations(cores: int, source: str, objective: str, results: Sequence[tuple[int, dict[str, Any]]]) -> str:
    """The recommendation per batch: the best split, its latency and throughput as the profile predicts them, beside
    the fat instance (1 x T threads) and the thin baseline (T x 1 thread), and the split's speedup over fat."""
    head = [f"cpubench tune: {cores} cores, {objective} objective, profile {escape.one_line(source)}"]
    rows = []
    for b, sol in results:
        best, fat, thin = sol["split"], sol["fat"], sol["thin"]
        speed = tables.fmt_ratio(fat.latency_ms / best.latency_ms) if best and fat else tables.MISSING
        rows.append([b, split_text(best) if best or not sol.get("why") else f"n/a: {sol['why']}",
                     _ms(best.latency_ms if best else None),
                     tables.fmt_ips(best.throughput if best else None), _ms(fat.latency_ms if fat else None),
                     _ms(thin.latency_ms if thin else None), speed])  # fmt: skip
    headers = ["batch", "best split", "latency ms", "images/sec", f"fat 1x{cores} ms", f"thin {cores}x1 ms",
               "speedup vs fat"]  # fmt: skip
    return "\n".join([*head, "", tables.markdown_table(headers, rows)])


def verified_table(found: dict[int, Verification]) -> str:
    """Expected against measured, per batch: each configuration's latency (p50 of its slowest instance; expected
    from the profile), throughput, the windows' overlap, and the split's speedup over the fat instance."""
    rows = []
    for b, v in sorted(found.items()):
        for label, x in (("split", v.split), ("fat", v.fat), ("thin", v.thin)):
            if x is None:
                continue
            state = f"failed: {x.failed[0]}" if x.failed and x.p50_ms is None else ""
            rows.append([b, label, x.split_text, _ms(x.expected_ms), state or _ms(x.p50_ms), _ms(x.p99_ms),
                         tables.fmt_ips(x.throughput), tables.MISSING if x.overlap is None else f"{x.overlap:.2f}",
                         x.repeats])  # fmt: skip
        rows.append([b, "speedup vs fat", "", tables.fmt_ratio(v.expected_speedup),
                     tables.fmt_ratio(v.measured_speedup), "", "", "", ""])  # fmt: skip
    headers = ["batch", "configuration", "instances", "expected ms", "measured p50 ms", "p99 ms", "images/sec",
               "overlap", "repeats"]  # fmt: skip
    return tables.markdown_table(headers, rows)


def tuned_section(runs: Iterable[Any], level: str = "##") -> list[str]:
    """The report's and the pages' "Tuned splits" part: per host, model, engine and core budget, each verified
    batch's recommended split, fat and thin configurations, expected against measured. Empty without verifications
    (so outputs without them are as they were)."""
    found = verifications(runs)
    if not found:
        return []
    out = [f"{level} Tuned splits", "",
           "Each configuration ran as concurrent instances, each pinned to its own cores and timed in one common "
           "window behind a barrier (`cpubench tune --verify`). Latency: the slowest instance's (median over "
           "repeats); expected: from the single-instance profile; overlap: the smallest share of an instance's "
           "window that every other instance's covered.", ""]  # fmt: skip
    for (host, model, fw, ex, cores), by_batch in found.items():
        out += [f"{level}# {escape.md_text(host)}: {escape.md_text(model)}, {escape.md_text(fw)} "
                f"{escape.md_text(ex)}, {cores} cores", "", verified_table(by_batch), ""]  # fmt: skip
    return out
