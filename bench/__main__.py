"""`python -m bench [--jobs K] [--bots B] [--time-factor F] [--write] ...`

Runs the workload through our bot, then through the gpt4free-style baseline, each against
fresh fakes, and prints every figure with the ratio ours/baseline. See BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
import tempfile
from pathlib import Path

from bench.report import section, table, text_table, workload_rows, write_section
from bench.run import Distribution, Params, Result, run_leg
from bench.workloads import WORKLOADS, workload

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    defaults = Params()
    parser.add_argument("--jobs", type=int, default=defaults.jobs, help="jobs, one user each")
    parser.add_argument("--bots", type=int, default=defaults.bots, help="bots in the process")
    parser.add_argument(
        "--time-factor",
        type=float,
        default=defaults.time_factor,
        help="scales job durations and the bot's poll and edit intervals alike",
    )
    parser.add_argument(
        "--queue", type=Distribution.parse, default=defaults.queue, help="uniform:0:3 (seconds)"
    )
    parser.add_argument(
        "--generation",
        type=Distribution.parse,
        default=defaults.generation,
        help="uniform:5:20 (seconds; also const:X, expo:MEAN)",
    )
    parser.add_argument(
        "--burst", type=int, default=defaults.burst, help="/help updates sent at once"
    )
    parser.add_argument(
        "--ramp", type=float, default=defaults.ramp, help="seconds over which jobs are sent"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--repeat", type=int, default=1, help="run both bots N times, report medians"
    )
    parser.add_argument("--grace", type=float, default=defaults.grace)
    parser.add_argument(
        "--auth-latency",
        type=float,
        default=defaults.auth_latency,
        help="seconds the fake sign-up/refresh takes (Firebase over the internet)",
    )
    parser.add_argument(
        "--workload",
        help=f"named workloads, comma-separated, or all: {', '.join(WORKLOADS)} "
        "(the options above then only set --time-factor and --seed)",
    )
    parser.add_argument("--no-baseline", action="store_true", help="run our bot only")
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    parser.add_argument("--workdir", type=Path, help="keep configs, databases and logs here")
    parser.add_argument(
        "--processes",
        type=lambda text: [int(n) for n in text.split(",")],
        help="1,2,4: that many bot processes on one PostgreSQL (bench/processes.py)",
    )
    parser.add_argument(
        "--kill", action="store_true", help="with --processes: also kill -9 one of 3 mid-run"
    )
    args = parser.parse_args(argv)
    if args.workload and args.processes:
        # One named workload on N processes (e.g. telegram-limits: 429s over all of them).
        return _processes(args, workload(args.workload, time_factor=args.time_factor))
    if args.workload:
        names = list(WORKLOADS) if args.workload == "all" else args.workload.split(",")
        code = 0
        for name in names:
            params = workload(name, time_factor=args.time_factor, seed=args.seed)
            command = f"python -m bench --workload {name} --repeat {args.repeat}"
            code |= _run_and_report(params, args, command)
        return code
    params = Params(
        jobs=args.jobs,
        bots=args.bots,
        time_factor=args.time_factor,
        queue=args.queue,
        generation=args.generation,
        burst=args.burst,
        ramp=args.ramp,
        seed=args.seed,
        grace=args.grace,
        auth_latency=args.auth_latency,
    )
    if args.processes:
        return _processes(args, params)
    command = " ".join(["python -m bench", *(shlex.quote(a) for a in argv if a != "--write")])
    return _run_and_report(params, args, command)


def _run_and_report(params: Params, args: argparse.Namespace, command: str) -> int:
    ours: list[Result] = []
    baseline: list[Result] = []
    for _ in range(max(1, args.repeat)):
        mine, theirs = asyncio.run(run(params, args.workdir, with_baseline=not args.no_baseline))
        ours.append(mine)
        if theirs is not None:
            baseline.append(theirs)
    print(f"\n{command}")
    print(text_table(table(ours, baseline, workload_rows(params.workload))))
    if args.write:
        write_section(ROOT / "BENCHMARKS.md", command, section(command, params, ours, baseline))
        print(f"\nwrote BENCHMARKS.md ({command})")
    return 0 if all(result.failed == 0 for result in ours) else 1


def _processes(args: argparse.Namespace, params: Params) -> int:
    from bench.processes import report, run_all

    with tempfile.TemporaryDirectory(prefix="bench-") as temporary:
        base = args.workdir or Path(temporary)
        results = asyncio.run(
            run_all(args.processes, params, base, kill=args.kill, repeat=max(1, args.repeat))
        )
    print()
    print(report(results))
    return 0 if all(r.delivered == r.jobs for r in results) else 1


async def run(
    params: Params, workdir: Path | None, *, with_baseline: bool = True
) -> tuple[Result, Result | None]:
    with tempfile.TemporaryDirectory(prefix="bench-") as temporary:
        base = workdir or Path(temporary)
        ours = await run_leg("ours", params, base / "ours")
        baseline = await run_leg("baseline", params, base / "baseline") if with_baseline else None
    return ours, baseline


if __name__ == "__main__":
    sys.exit(main())
