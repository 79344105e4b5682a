"""Build budget: the cold build of the whole book, and each chapter's time and memory.

    python benchmarks/book.py            # both parts
    python benchmarks/book.py --skip-build

Part 1 runs the same cold build as `make book` and reads each notebook's
execution time from the build log. Part 2 executes each chapter on its own in
a fresh kernel (as Binder would) while sampling the kernel's resident memory,
and its child processes (proportional set size), and reports the peak. Targets: whole book within 180 s on the 2-core machine,
each chapter within 30 s, no chapter's kernel above 1.5 GB (Binder gives
about 2 GB).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOOK_LIMIT_S, CHAPTER_LIMIT_S, MEMORY_LIMIT_B = 180, 30, 1.5e9


def cold_build() -> tuple[float, dict[str, float], int]:
    jb = str(Path(sys.executable).with_name("jupyter-book"))
    start = time.perf_counter()
    proc = subprocess.run([jb, "build", str(ROOT), "--all", "-W", "-n", "--keep-going"],
                          cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    log = proc.stdout + proc.stderr
    times = {Path(m[0]).stem: float(m[1]) for m in
             re.findall(r"(\S+\.md): Executed notebook in ([\d.]+) seconds", log)}
    return seconds, times, proc.returncode


def peak_kernel_memory(path: Path) -> tuple[float, int]:
    """Execute one chapter in a fresh kernel; return (seconds, peak PSS in bytes).

    The kernel's child processes (the torch.distributed workers of exercise 3)
    are counted too.
    """
    import jupytext
    import psutil
    from nbclient import NotebookClient

    nb = jupytext.read(path)
    client = NotebookClient(nb, kernel_name="python3", timeout=300,
                            resources={"metadata": {"path": str(path.parent)}})
    peak, done = [0], threading.Event()

    def sample(pid):
        proc = psutil.Process(pid)
        while not done.is_set():
            try:
                # PSS: shared pages (torch's libraries, mapped by every worker
                # process) are split between the processes that share them, so
                # the sum over the kernel and its children is the tree's memory.
                pss = proc.memory_full_info().pss + sum(
                    c.memory_full_info().pss for c in proc.children(recursive=True))
                peak[0] = max(peak[0], pss)
            except psutil.Error:
                pass
            time.sleep(0.25)

    start = time.perf_counter()
    with client.setup_kernel():
        pid = client.km.provisioner.process.pid
        sampler = threading.Thread(target=sample, args=(pid,), daemon=True)
        sampler.start()
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        done.set()
        sampler.join()
    return time.perf_counter() - start, peak[0]


def chapters() -> list[Path]:
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [ROOT / f"{c['file']}.md" for part in toc["parts"] for c in part["chapters"]
            if c["file"].startswith("chapters/")]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-build", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args(argv)
    ok = True
    if not args.skip_build:
        seconds, times, rc = cold_build()
        print(f"cold build of the whole book: {seconds:.0f} s "
              f"(target <= {BOOK_LIMIT_S} s), exit code {rc}")
        ok &= rc == 0 and seconds <= BOOK_LIMIT_S
        for name, t in times.items():
            print(f"  {name:<30} executed in {t:5.1f} s")
            ok &= t <= CHAPTER_LIMIT_S
    if not args.skip_memory:
        print("each chapter alone, in a fresh kernel:")
        for path in chapters():
            t, peak = peak_kernel_memory(path)
            print(f"  {path.stem:<30} {t:5.1f} s, peak kernel memory {peak / 2**20:6.0f} MiB")
            ok &= t <= CHAPTER_LIMIT_S and peak <= MEMORY_LIMIT_B
    print("all targets met" if ok else "SOME TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
