"""bench.timers, the report: the tables the harness prints."""

from __future__ import annotations

import math

from bench.stack import (
    mib,
    percentile,
)

# -- the report ----------------------------------------------------------------------------
from bench.timer_plan import PhaseResult


def seconds(x: float) -> str:
    return ">drain" if math.isinf(x) else f"{x:.2f}"


def report(results: list[PhaseResult]) -> None:
    print("\n== timers: 2 cores; lateness = Slack received - due, seconds ==")
    print(
        "columns: fires received, miss(ing after --drain), lateness p50/p99/max; mean CPU% of\n"
        "one core: worker, dev server, Slack emulator, other processes on the machine; workflow\n"
        "tasks the worker ran, sticky cache misses, mean workflow task execution and\n"
        "schedule-to-start (ms). Below each rate: where the lateness went, from the\n"
        "histories of a sample (set = when the timer was set to fire - due, timer = fired -\n"
        "when set to fire, task = activity scheduled - fired,\n"
        "queue = activity started - scheduled, slack = received - activity started)."
    )
    for r in results:
        d = r.declare_latency
        print(
            f"\n{r.plan.name} / {r.label}: {r.open} open; opened in {r.declare_seconds:.0f}s "
            f"({len(d) / r.declare_seconds:.0f}/s, latency p50 {percentile(d, 50):.2f}s "
            f"p99 {percentile(d, 99):.2f}s, slipped {r.slipped}, second reminders {r.extra})"
        )
        o = r.open_cpu
        print(
            f"  while opening: worker {o['worker']:.0f}% CPU, dev server {o['temporal']:.0f}%, "
            f"emulator {o['slack']:.0f}%, this harness {o['bench']:.0f}%, others {o['others']:.0f}%"
        )
        for reason, times in r.refused.items():
            print(f"  declarations refused with '{reason}' and retried: {times}")
        print(
            f"  worker RSS: {mib(r.rss_declared)} after opening, {mib(r.rss_end)} at end, "
            f"{mib(r.rss_peak)} peak"
        )
        q = r.quiet_cpu
        print(
            f"  nothing due ({r.quiet_seconds:.0f}s): worker {q['worker']:.1f}% CPU, "
            f"dev server {q['temporal']:.1f}%, emulator {q['slack']:.1f}% (of one core)"
        )
        print(
            f"  {'rate/s':>7}{'fires':>7}{'miss':>6}{'p50':>8}{'p99':>8}{'max':>8}"
            f"{'wrk%':>7}{'srv%':>7}{'slk%':>6}{'oth%':>6}{'WFTs':>7}{'miss$':>7}"
            f"{'wft ms':>8}{'s2s ms':>8}"
        )
        for s in r.steps:
            c = s.counters
            wfts = c.get("temporal_workflow_task_execution_latency_count", 0)
            exec_ms = 1000 * c.get("temporal_workflow_task_execution_latency_sum", 0) / max(wfts, 1)
            s2s = c.get("temporal_workflow_task_schedule_to_start_latency_count", 0)
            s2s_ms = (
                1000
                * c.get("temporal_workflow_task_schedule_to_start_latency_sum", 0)
                / max(s2s, 1)
            )
            print(
                f"  {s.step.rate:>7g}{len(s.lateness):>7}{s.missing:>6}"
                f"{seconds(s.p(50)):>8}{seconds(s.p(99)):>8}{seconds(s.p(100)):>8}"
                f"{s.cpu['worker']:>7.0f}{s.cpu['temporal']:>7.0f}{s.cpu['slack']:>6.0f}"
                f"{s.cpu['others']:>6.0f}{wfts:>7.0f}"
                f"{c.get('temporal_sticky_cache_miss', 0):>7.0f}{exec_ms:>8.1f}{s2s_ms:>8.0f}"
            )
            if s.stages:
                parts = [
                    f"{stage} {percentile(v, 50):.2f}/{percentile(v, 99):.2f}"
                    for stage, v in s.stages.items()
                ]
                print(f"  {'':>7}  p50/p99 of {len(s.stages['timer'])}: " + ", ".join(parts))
        if r.cold_start is not None:
            killed, ready = r.cold_start
            took, late = r.recovery
            print(
                f"  cold start: every worker stopped, back {ready - killed:.1f}s later; "
                f"{late} reminders 1 s or more late; every due timer on time again "
                f"{took:.1f}s after the workers were back"
            )
        if r.profile:
            print("  py-spy --gil on the worker: share of samples with the function on the stack")
            for frame, share in r.profile:
                print(f"    {share:5.1f}%  {frame}")
    ratios(results)


def ratios(results: list[PhaseResult]) -> None:
    by = {(r.plan.name, r.kind, r.workers): r for r in results}
    counts = sorted({r.workers for r in results})
    print("\nproduct / baseline, with the same number of workers")
    for name in ("steady", "steps"):
        for n in counts:
            product, bare = by.get((name, "product", n)), by.get((name, "bare", n))
            if not (product and bare):
                continue
            print(
                f"  {name}, {n} worker(s): worker RSS at end "
                f"{product.rss_end / max(bare.rss_end, 1):.1f}x; CPU nothing due "
                f"{_ratio(product.quiet_cpu['worker'], bare.quiet_cpu['worker'])}"
            )
            for p, b in zip(product.steps, bare.steps, strict=True):
                print(
                    f"    {p.step.rate:g}/s: p50 {_ratio(p.p(50), b.p(50))}, "
                    f"p99 {_ratio(p.p(99), b.p(99))}, "
                    f"worker CPU {_ratio(p.cpu['worker'], b.cpu['worker'])}"
                )
    for r in results:
        if r.plan.name == "steps":
            ok = [s.step.rate for s in r.steps if s.p(99) < 1]
            print(
                f"  highest rate with p99 < 1 s, {r.label}: {max(ok):g}/s"
                if ok
                else f"  highest rate with p99 < 1 s, {r.label}: none of {args_steps(r)}"
            )


def args_steps(r: PhaseResult) -> str:
    return ",".join(f"{s.step.rate:g}" for s in r.steps)


def _ratio(a: float, b: float) -> str:
    if math.isinf(a) or math.isinf(b) or not b:
        return "n/a"
    return f"{a / b:.1f}x"
