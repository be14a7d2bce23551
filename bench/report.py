"""The final table (scenario x ours, baseline, ratio) and the issue's bars, as plain text / Markdown."""

from __future__ import annotations

from collections.abc import Callable

from bench.scenarios import RunResult, StepResult

__all__ = ["bars", "table"]

Burst = dict[str, dict[str, object]]  # kind -> mode -> summary


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _lat(step: StepResult | None) -> str:
    if step is None or step.p50_ms is None or step.p99_ms is None:
        return ""
    return f" ({step.p50_ms:.1f}/{step.p99_ms:.1f} ms)"


def _held(best: StepResult | None, steps: list[StepResult], unit: int) -> str:
    if best is not None:
        return _fmt(best.rate * unit) + _lat(best)
    if not steps:
        return "-"
    first = steps[0]
    return f"none held (at {first.rate:g}/s: missing {first.lost}, p99 {_fmt(first.p99_ms, 1)} ms)"


def _ratio(ours: float | None, base: float | None, *, lower_is_better: bool = False) -> str:
    if ours is None or base is None or ours == 0 or base == 0:
        return "n/a"
    return f"{(base / ours if lower_is_better else ours / base):.2f}x"


def _metrics(run: RunResult | None) -> dict[str, tuple[float | None, str]]:
    if run is None:
        return {}
    n = run.connections
    bcast, priv, ref = run.best(run.broadcast), run.best(run.private), run.private_reference
    ref_p99 = ref.p99_ms if ref is not None else None
    ref_text = f"{_fmt(ref.p50_ms, 2)} / {_fmt(ref_p99, 2)} ms" if ref is not None else "-"
    if ref is not None and not ref.ok:
        ref_text += f" (lost {ref.lost})"
    return {
        "broadcast max deliveries/s": (bcast.rate * n if bcast else None, _held(bcast, run.broadcast, n)),
        "private max msgs/s": (priv.rate if priv else None, _held(priv, run.private, 1)),
        "private p50 / p99 @1,000 msg/s": (ref_p99, ref_text),
        "idle memory KiB/conn": (run.idle_kib_per_conn, _fmt(run.idle_kib_per_conn, 1)),
        "connects/s": (run.connects_per_s, f"{_fmt(run.connects_per_s)} ({run.opened}/{n})"),
    }


LOWER_IS_BETTER = {"private p50 / p99 @1,000 msg/s", "idle memory KiB/conn"}


def table(runs: list[RunResult], bursts: Burst) -> str:
    """A Markdown table: one row per scenario and N, columns ours / baseline / ratio."""
    lines = ["| scenario | N | ours | baseline | ours vs baseline |", "|---|---:|---:|---:|---:|"]
    for n in sorted({r.connections for r in runs}):
        ours = _metrics(next((r for r in runs if r.kind == "ours" and r.connections == n), None))
        base = _metrics(next((r for r in runs if r.kind == "baseline" and r.connections == n), None))
        for name in list((ours or base).keys()):
            o, b = ours.get(name, (None, "-")), base.get(name, (None, "-"))
            ratio = _ratio(o[0], b[0], lower_is_better=name in LOWER_IS_BETTER)
            lines.append(f"| {name} | {n:,} | {o[1]} | {b[1]} | {ratio} |")
    for mode in ("private", "broadcast"):
        cells = []
        for kind in ("ours", "baseline"):
            summary = bursts.get(kind, {}).get(mode)
            cells.append(
                "-"
                if summary is None
                else f"{summary['connected']}/{summary['clients']} in {summary['connect_seconds']:.1f} s, "
                f"lost {summary['lost']}"
            )
        n_burst = next((s["clients"] for k in bursts.values() for s in k.values()), "-")
        lines.append(f"| start-up burst, {mode} publish | {n_burst} | {cells[0]} | {cells[1]} | |")
    return "\n".join(lines)


def bars(runs: list[RunResult], bursts: Burst, connect_medians: dict[int, float] | None = None) -> str:
    """The issue's bars, each with the measured value and met / NOT met.

    The connect bar uses the median over fresh servers (``connect_medians``, N -> connects/s) where
    it was measured, else the relay run's single round.
    """
    medians = connect_medians or {}
    out: list[str] = []

    def bar(text: str, value: str, met: bool | None) -> None:
        verdict = "n/a" if met is None else ("met" if met else "NOT met")
        out.append(f"- {text}: {value}: **{verdict}**")

    def pair(n: int) -> tuple[RunResult | None, RunResult | None]:
        find: Callable[[str], RunResult | None] = lambda kind: next(  # noqa: E731
            (r for r in runs if r.kind == kind and r.connections == n), None
        )
        return find("ours"), find("baseline")

    for n in sorted({r.connections for r in runs} | set(medians)):
        ours, base = pair(n)
        fanout = (("broadcast", "broadcast", 5, n), ("private", "private", 3, 1)) if ours or base else ()
        for label, attr, need, unit in fanout:
            text = f"{label} >= {need}x baseline (N={n:,})"
            if ours is None or base is None:
                bar(text, "not run for both servers", None)
                continue
            o, b = ours.best(getattr(ours, attr)), base.best(getattr(base, attr))
            if o is None or b is None:
                value = f"ours held {o.rate * unit if o else 'no'} rate, baseline {b.rate * unit if b else 'no'} rate"
                bar(text, value, None if o is None and b is None else b is None)
                continue
            ratio = o.rate / b.rate
            bar(text, f"{ratio:.2f}x", ratio >= need)
        if n in medians:
            rate = medians[n]
            bar(f">= 2,500 connects/s (N={n:,}, median of fresh servers)", f"{_fmt(rate)}/s", rate >= 2500)
        if ours is not None:
            ref = ours.private_reference
            p99 = ref.p99_ms if ref is not None else None
            bar(f"private p99 < 5 ms at 1,000 msg/s (N={n:,})", f"{_fmt(p99, 2)} ms", None if p99 is None else p99 < 5)
            kib = ours.idle_kib_per_conn
            bar(f"< 20 KiB per idle connection (N={n:,})", f"{_fmt(kib, 1)} KiB", None if kib is None else kib < 20)
            if n not in medians:
                rate = ours.connects_per_s
                bar(
                    f">= 2,500 connects/s (N={n:,}, one round)",
                    f"{_fmt(rate)}/s",
                    None if rate is None else rate >= 2500,
                )
    ours_bursts = bursts.get("ours", {})
    lost = [s for s in ours_bursts.values() if s["lost"] or s["connected"] != s["clients"]]
    steps_lost = sum(
        1 for r in runs if r.kind == "ours" and r.private_reference is not None and r.private_reference.lost
    )
    detail = ", ".join(
        f"{m}: lost {s['lost']}, {s['connected']}/{s['clients']} connected" for m, s in ours_bursts.items()
    )
    met = None if not ours_bursts else not lost and not steps_lost
    bar("zero loss (at the held rates, at 1,000 msg/s, and in the start-up burst)", detail or "-", met)
    return "\n".join(out)
