"""Instructions per answer step, counted by callgrind: a comparison the machine's noise does not move.

On a shared VM the wall-clock figures of ``answer_step.py`` move by a quarter from one run to
the next, more than most changes to a press. Here the same steps run under valgrind's
callgrind, which counts the instructions the process executes (not time): a run of
``--base`` steps and a run of ``--base`` + ``--steps`` steps, each after the same setup, and
their difference divided by ``--steps`` is the instructions of one step. The same count,
whatever else the machine does, so two commits compare exactly.

    python bench/press_instructions.py                         # this checkout: bare and Zicha
    python bench/press_instructions.py --repo ../old --repo .   # two checkouts (git worktree add ../old <commit>)

What runs is ``answer_step.py``'s: its ``BareRunner`` and ``ZichaRunner`` (``normal``
durability: a COMMIT does not wait for fsync, which would not count as instructions anyway)
with the null session, each press "符合" on the live question, from the checkout named (its
``bench/answer_step.py`` and its code). The background checkpointer is stopped (it works on
its own clock) and ``PYTHONHASHSEED=0``. Instructions are not time: a cache miss costs no
instruction, a COMMIT's fsync none; this is the CPU work of a step, for comparing commits and
bots, beside ``answer_step.py``'s timings. Needs valgrind (``apt install valgrind``); about
two minutes a run, the runs spread over the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import importlib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve()


def run_steps(repo: str, bot: str, steps: int, pad: int) -> None:
    """In the process valgrind counts: the setup, 100 warm-up steps, ``steps`` steps, then
    ``pad`` more starts over of Zicha's interview (each ``ZichaRunner`` cycle through the
    checklist ends in one: the answers deleted, ``/start``), so that the shorter run does as
    many as the longer and their difference is steps only. Prints the cycles done."""
    sys.path.insert(0, str(Path(repo) / "bench"))
    sys.path.insert(0, repo)
    bench = importlib.import_module("answer_step")  # the checkout's own, found first on the path

    async def go() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            zicha = bench.ZichaRunner(Path(tmp), "normal")
            survey = bench.Survey(zicha.compliance, {s.id: s.title.get(bench.LOCALE) for s in zicha.checklist.sections})
            bare = bench.BareRunner(survey)
            zicha.checkpointer.stop()  # no thread working on its own clock while counted
            runner = zicha if bot == "zicha" else bare
            for _ in range(100 + steps):
                await runner.prepare()
                await runner.step()
                runner.check_last()
            print(f"cycles={zicha.cycles if runner is zicha else 0}")
            for _ in range(pad):
                zicha.reset()
                await zicha.start()

    asyncio.run(go())


def _command(repo: str, bot: str, steps: int, pad: int) -> list[str]:
    return [sys.executable, str(HERE), "--run", repo, bot, str(steps), str(pad)]


def _cycles(output: str) -> int:
    found = re.search(r"cycles=(\d+)", output)
    if found is None:
        raise SystemExit(f"no cycles in the output:\n{output[-2000:]}")
    return int(found.group(1))


def count(repo: str, bot: str, steps: int, pad: int = 0) -> tuple[int, int]:
    """The instructions callgrind counts for the whole process, and the cycles it did."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *_command(repo, bot, steps, pad)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"valgrind run failed ({repo} {bot} {steps}):\n{done.stderr[-2000:]}")
    return int(found.group(1)), _cycles(done.stdout)


def per_step(repo: str, bot: str, base: int, steps: int) -> float:
    """Instructions of one step: the longer run counted, then the shorter padded to as many
    cycles (found by running it once without valgrind: the cycles depend on the steps only)."""
    longer, cycles = count(repo, bot, base + steps)
    native = subprocess.run(_command(repo, bot, base, 0), capture_output=True, text=True, check=True)
    shorter, _ = count(repo, bot, base, cycles - _cycles(native.stdout))
    return (longer - shorter) / steps


def commit_of(repo: str) -> str:
    done = subprocess.run(["git", "-C", repo, "log", "-1", "--format=%h"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", action="append", help="a checkout to count (repeat for several; default: this one)")
    parser.add_argument("--steps", type=int, default=300, help="steps counted (the difference of the two runs)")
    parser.add_argument("--base", type=int, default=50, help="steps of the shorter run")
    parser.add_argument("--run", nargs=4, metavar=("REPO", "BOT", "STEPS", "PAD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run_steps(args.run[0], args.run[1], int(args.run[2]), int(args.run[3]))
        return
    repos = [str(Path(r).resolve()) for r in (args.repo or [str(HERE.parents[1])])]
    jobs = [(repo, bot) for repo in repos for bot in ("bare", "zicha")]
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        counted = dict(zip(jobs, pool.map(lambda job: per_step(job[0], job[1], args.base, args.steps), jobs), strict=True))
    print(f"Instructions per answer step (callgrind; {args.steps} steps: runs of {args.base} and "
          f"{args.base + args.steps} steps after 100 warm-up steps, as many starts over in both; normal durability)")  # fmt: skip
    print(f"{'checkout':<28} {'commit':<9} {'bot':<7} {'instructions/step':>18} {'× bare':>7}")
    for repo in repos:
        for bot in ("bare", "zicha"):
            n = counted[(repo, bot)]
            print(f"{Path(repo).name:<28} {commit_of(repo):<9} {bot:<7} {n:>18,.0f} {n / counted[(repo, 'bare')]:>6.2f}×")
    if len(repos) > 1:
        a, b = counted[(repos[0], "zicha")], counted[(repos[-1], "zicha")]
        print(f"zicha, {commit_of(repos[-1])} against {commit_of(repos[0])}: {b / a:.3f}× the instructions ({b - a:+,.0f} a step)")


if __name__ == "__main__":
    main()
