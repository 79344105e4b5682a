"""A seeded random sample of one module's mutants, judged by its fast tests.

`make mutants-sample MODULE=check/ex2_download_cost.py TESTS="..."`, never part
of `make test`. A whole mutmut run of a large module takes hours on 2 cores
(about 5 mutants a minute); a random sample of them estimates the same score
in minutes, with a stated uncertainty. The mutants are mutmut's own
(mutmut.list_mutations and mutmut.mutate, mutmut 2.5.1 from .venv-mutants),
so a sampled mutant is one `make mutants` would judge; this script only
picks which and runs the tests.

Works on a scratch copy of the tracked files, like scripts/mutants.sh. A
mutant is killed when the tests fail (any non-zero status) or run past
TIMEOUT_FACTOR (--timeout-factor) times the unmutated run, at least 30 s (then the test run's
whole process group is stopped), twice: a run that times out once is tried
again with three times the time, since a busy machine slows the tests of a
survivor too, and only a second timeout counts as caught. --max-minutes is checked between mutants, so
a run may end one mutant's time after it. Writes to --out (default
_build/mutants-sample, apart from `make mutants`'s _build/mutants):
<name>.json (every judged mutant and its status), <name>.survivors.diff, and
one line of summary.md (a sample's score with its 95 % interval; a census or
a rejudge without one). --rejudge FILE.json runs only that file's survivors
(and timed-out mutants) again, with the tests as they are now (what the tests written after a run
catch); each is found on its line even where lines above it moved.
--changed-since COMMIT samples only the mutants on lines added or changed
since COMMIT (`git diff COMMIT`), to judge new lines by the run.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mutmut import Context, RelativeMutationID, list_mutations, mutate

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_FACTOR = 10


def scratch_copy() -> Path:
    work = Path(tempfile.mkdtemp(prefix="mutants-sample-"))
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                           check=True, capture_output=True, text=True).stdout.split("\n")
    for name in files:
        if name and not name.startswith((".venv", "_vendor")) and (ROOT / name).is_file():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, work / name)
    (work / ".venv").symlink_to(ROOT / ".venv")
    return work


def run_tests(work: Path, tests: str, timeout_s: float | None) -> tuple[str, float]:
    start = time.monotonic()
    cmd = f"{ROOT}/.venv/bin/python -m pytest -x -q -p no:cacheprovider {tests}"
    proc = subprocess.Popen(["bash", "-c", cmd], cwd=work, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(work)})
    try:
        returncode = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:  # the whole group: pytest and what it started
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return "timeout", time.monotonic() - start
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    status = "survived" if returncode == 0 else "killed"
    return status, time.monotonic() - start


def changed_lines(commit: str, module: str) -> set[int]:
    """1-based line numbers of dmlbook/<module> added or changed since ``commit``."""
    diff = subprocess.run(["git", "diff", "-U0", commit, "--", f"dmlbook/{module}"], cwd=ROOT,
                          check=True, capture_output=True, text=True).stdout
    lines = set()
    for hunk in re.finditer(r"^@@ -\S+ \+(\d+)(?:,(\d+))? @@", diff, re.M):
        start, count = int(hunk[1]), int(hunk[2] or 1)
        lines.update(range(start, start + count))
    return lines


def write_results(out: Path, name: str, args, n_mutants: int, judged, diffs) -> None:
    (out / f"{name}.json").write_text(json.dumps(
        {"module": args.module, "tests": args.tests, "mutants": n_mutants,
         "seed": args.seed, "judged": judged}, indent=1))
    (out / f"{name}.survivors.diff").write_text("\n".join(diffs))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--module", required=True, help="path under dmlbook/, e.g. units.py")
    parser.add_argument("--tests", required=True, help="pytest arguments (files, -k ...)")
    parser.add_argument("--sample", type=int, default=80, help="mutants to judge")
    parser.add_argument("--seed", type=int, default=27)
    parser.add_argument("--out", default=str(ROOT / "_build" / "mutants-sample"))
    parser.add_argument("--rejudge", help="a <name>.json of an earlier run: its survivors")
    parser.add_argument("--changed-since", metavar="COMMIT",
                        help="sample only mutants on lines added or changed since COMMIT")
    parser.add_argument("--max-minutes", type=float, default=24 * 60,
                        help="stop judging after this long (what was judged is a sample)")
    parser.add_argument("--timeout-factor", type=float, default=TIMEOUT_FACTOR,
                        help="a mutant's first time limit in unmutated runs (at least 30 s); "
                             f"default {TIMEOUT_FACTOR:g}. A module whose mutants hang "
                             "(a time limit's own code) judges faster on a quiet machine at 3")
    args = parser.parse_args()
    if not 1 <= args.sample <= 10_000:
        parser.error("--sample: a count from 1 to 10,000")
    if not 2 <= args.timeout_factor <= 100:
        parser.error("--timeout-factor: a number from 2 to 100")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = args.module.removesuffix(".py").replace("/", "_")
    if not (ROOT / "dmlbook" / args.module).is_file():
        parser.error(f"--module: a file under dmlbook/, got {args.module!r}")
    # SIGTERM (a lane stopped by `timeout` or `kill`) cleans up as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    work = scratch_copy()
    target = work / "dmlbook" / args.module
    source = target.read_text()
    try:
        ids = list_mutations(Context(source=source, filename=str(target)))
        if args.rejudge:
            earlier = json.loads(Path(args.rejudge).read_text())
            if earlier["module"] != args.module:
                parser.error(f"--rejudge: {args.rejudge} judged {earlier['module']}, "
                             f"not {args.module}")
            picked, free = [], list(ids)
            for m in sorted(earlier["judged"], key=lambda m: m["line_number"]):
                if m["status"] not in ("survived", "timeout"):
                    continue
                # The same line and mutation, nearest the old line number (lines above it
                # may have moved), each taken once. A changed line took its mutants with it.
                same = [i for i in free if (i.line, i.index) == (m["line"], m["index"])]
                if same:
                    found = min(same, key=lambda i: abs(i.line_number - m["line_number"]))
                    picked.append(found)
                    free.remove(found)
                else:
                    print(f"gone with its line: {m['line'].strip()}", flush=True)
            name += ".rejudged"
        else:
            if args.changed_since:
                changed = changed_lines(args.changed_since, args.module)
                ids = [i for i in ids if i.line_number + 1 in changed]  # mutmut's are 0-based
                print(f"{len(ids)} mutants on {len(changed)} lines changed since "
                      f"{args.changed_since}", flush=True)
                name += ".changed"
            picked = random.Random(args.seed).sample(ids, min(args.sample, len(ids)))
        status, baseline_s = run_tests(work, args.tests, None)
        if status != "survived":
            print(f"{args.module}: the tests fail without a mutant", file=sys.stderr)
            return 1
        judged, diffs, start = [], [], time.monotonic()
        for k, mid in enumerate(picked, start=1):
            if time.monotonic() - start > 60 * args.max_minutes:
                print(f"stopped after {args.max_minutes:g} minutes", flush=True)
                break
            mutant_id = RelativeMutationID(mid.line, mid.index, mid.line_number,
                                           filename=str(target))
            mutated, _ = mutate(Context(source=source, mutation_id=mutant_id,
                                        filename=str(target)))
            target.write_text(mutated)
            try:
                limit_s = max(args.timeout_factor * baseline_s, 30.0)
                status, _ = run_tests(work, args.tests, limit_s)
                if status == "timeout":  # a busy machine, or a mutant that hangs
                    status, _ = run_tests(work, args.tests, 3 * limit_s)
            finally:
                target.write_text(source)
            # line_number is mutmut's (0-based); the printed line is 1-based.
            judged.append({"line_number": mid.line_number, "index": mid.index,
                           "line": mid.line, "status": status})
            if status == "survived":
                diffs.append("".join(difflib.unified_diff(
                    source.splitlines(True), mutated.splitlines(True),
                    f"dmlbook/{args.module}", f"dmlbook/{args.module} (mutant)", n=1)))
            print(f"{k}/{len(picked)} line {mid.line_number + 1}: {status}", flush=True)
            # Written as it goes: a run stopped early is still a random sample.
            write_results(out, name, args, len(ids), judged, diffs)
    finally:
        target.write_text(source)
        shutil.rmtree(work, ignore_errors=True)

    caught = sum(m["status"] != "survived" for m in judged)
    n = len(judged)
    if not n:
        print(f"{args.module}: no mutant judged")
        return 0
    # A 95 % Wilson interval for the score of the whole module, from the sample.
    p, z = caught / n, 1.96
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    minutes = (time.monotonic() - start) / 60
    # A census (every mutant judged) is exact; a rejudge scores only the old survivors.
    interval = "" if n == len(ids) or args.rejudge else \
        f" ({100 * (centre - half):.0f}–{100 * (centre + half):.0f} %)"
    kind = " (rejudged survivors)" if args.rejudge else ""
    summary = (f"{args.module}{kind} | {len(ids)} | {n} | {caught} | {n - caught} | "
               f"{100 * p:.0f} %{interval} | {minutes:.0f}")
    with open(out / "summary.md", "a") as f:
        f.write(summary + "\n")
    print("module | mutants | judged | caught | survived | score (95 % interval) | minutes")
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
