"""Benchmark: the garbage collector's pauses in a started bot, its start-up objects frozen
(``bot.ops.lifecycle.freeze_startup_heap``, what `zicha run` and `zicha web` do before they
serve) or not (the interpreter as it is by default), in the same run.

A full collection walks every object the collector tracks, and the event loop waits while it
does: no update is handled meanwhile. The interpreter starts one by itself as objects that
outlive a few collections accumulate (in a bot, the bounded caches of screens, keyboards and
answers turning over as institutions answer). Each variant runs in a fresh process, the two
alternating --runs times:

1. the bot is built as `zicha run` builds it (``bench/answer_step.py``'s ``ZichaRunner``: the
   real app on a database file in WAL mode, ``normal`` durability), and for ``frozen``
   ``freeze_startup_heap()`` is called, as `zicha run` calls it;
2. --steps presses of "符合" through the real dispatcher and the null session (the
   interview starts over when the checklist is done): their p50 and p99, and the longest
   collection the interpreter started by itself during them;
3. --collections full collections (``gc.collect()``) timed: their median is the pause a full
   collection would make at that point, with what the presses made tracked in both variants.

Run from the repository root, with the ``bench`` extra installed (answer_step.py needs
aiogram-dialog):

    python bench/gc_pause.py [--runs 3] [--steps 2000] [--collections 7] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

VARIANTS = ("plain", "frozen")


async def _child(variant: str, steps: int, collections: int) -> dict[str, Any]:
    from bench.answer_step import ZichaRunner, run_batch, summarize
    from bot.ops.lifecycle import freeze_startup_heap

    with tempfile.TemporaryDirectory() as tmp:
        runner = ZichaRunner(Path(tmp), "normal")
        frozen = freeze_startup_heap() if variant == "frozen" else 0
        tracked_at_start = len(gc.get_objects())
        await run_batch(runner, 200, [], [], [], [])  # warm-up: caches and the interview's first pass
        pauses: list[tuple[int, float]] = []  # (generation, ms) of the collections the interpreter starts
        started = [0]

        def watch(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                started[0] = time.perf_counter_ns()
            else:
                pauses.append((info["generation"], (time.perf_counter_ns() - started[0]) / 1e6))

        gc.callbacks.append(watch)
        times: list[int] = []
        await run_batch(runner, steps, times, [], [], [])
        gc.callbacks.remove(watch)
        full: list[float] = []
        for _ in range(collections):
            t0 = time.perf_counter()
            gc.collect()
            full.append((time.perf_counter() - t0) * 1000)
        tracked_at_end = len(gc.get_objects())
        runner.checkpointer.stop()
        runner.db.close()
    s = summarize(times)
    return {
        "variant": variant,
        "frozen_objects": frozen,
        "tracked_at_start": tracked_at_start,
        "tracked_at_end": tracked_at_end,
        "full_collection_ms": statistics.median(full),
        "step_p50_us": s["p50_us"],
        "step_p99_us": s["p99_us"],
        "step_max_us": s["max_us"],
        "collections_during_steps": {str(g): sum(1 for gen, _ in pauses if gen == g) for g in range(3)},
        "longest_collection_during_steps_ms": max((ms for _, ms in pauses), default=0.0),
    }


def _run_child(variant: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", variant, "--steps", str(args.steps), "--collections", str(args.collections)]
    out = subprocess.run([*command, *(["--no-pin"] if args.no_pin else [])], check=True, capture_output=True, text=True, cwd=REPO)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _median(results: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="processes per variant, the variants alternating")
    parser.add_argument("--steps", type=int, default=2000, help="presses timed in each process")
    parser.add_argument("--collections", type=int, default=7, help="full collections timed in each process")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the processes to CPU 0")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if not args.no_pin and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {0})  # one core, as answer_step.py measures
        print(json.dumps(asyncio.run(_child(args.child, args.steps, args.collections))))
        return
    load_before = os.getloadavg()
    results: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    for r in range(args.runs):
        for variant in VARIANTS if r % 2 == 0 else reversed(VARIANTS):
            results[variant].append(_run_child(variant, args))
    if args.json:
        print(json.dumps({"results": results, "load_before": load_before, "load_after": os.getloadavg()}, indent=1))
        return
    print(
        f"GC pauses in a started bot — {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"{args.runs} processes per variant, {args.steps} presses each; load average before "
        f"{' '.join(f'{x:.2f}' for x in load_before)}, after {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(
        f"{'variant':8} {'frozen':>8} {'tracked':>8} {'full collection ms (runs)':>34} {'step p50 µs':>12} "
        f"{'p99 µs':>8} {'collections 0/1/2':>18} {'longest ms':>11}"
    )
    for variant in VARIANTS:
        rs = results[variant]
        runs = ", ".join(f"{r['full_collection_ms']:.1f}" for r in rs)
        counts = "/".join(str(sum(r["collections_during_steps"][g] for r in rs)) for g in "012")
        print(
            f"{variant:8} {rs[0]['frozen_objects']:>8} {int(_median(rs, 'tracked_at_end')):>8} "
            f"{_median(rs, 'full_collection_ms'):>9.1f} ({runs}){'':>4} {_median(rs, 'step_p50_us'):>12.0f} "
            f"{_median(rs, 'step_p99_us'):>8.0f} {counts:>18} {max(r['longest_collection_during_steps_ms'] for r in rs):>11.1f}"
        )
    plain, frozen = (_median(results[v], "full_collection_ms") for v in VARIANTS)
    print(f"a full collection, frozen against plain: {frozen / plain:.3f}× ({frozen:.1f} against {plain:.1f} ms)")
    print("tracked: objects the collector walks at the end (median); collections 0/1/2: those the interpreter")
    print("started by itself during the presses, by generation, over all runs; longest: the longest of them")


if __name__ == "__main__":
    main()
