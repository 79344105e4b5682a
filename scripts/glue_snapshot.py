#!/usr/bin/env python3
"""Every glued value of a built book, as one sorted JSON: ``{"doc:name": text/plain}``.

The book glues its numbers with ``myst_nb.glue``; myst-nb keeps them beside each
executed notebook (``_build/jupyter_execute/**/<doc>.glue.json``) and, in older
versions, in the notebook's outputs (metadata ``scrapbook``). Both are read.

    scripts/glue_snapshot.py [BUILD_DIR] [-o snapshot.json]
    scripts/glue_snapshot.py --compare before.json after.json

``--compare`` prints how many values are identical, different, or only in one
snapshot, and lists every one that is not identical (timings measured on the
machine differ from build to build; every other value should not).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _text(output: dict) -> str | None:
    data = output.get("data", {})
    for key in ("text/plain", "application/papermill.record/text/plain"):
        if key in data:
            value = data[key]
            return "".join(value) if isinstance(value, list) else value
    return None


def snapshot(build_dir: Path) -> dict[str, str]:
    """``{"doc:name": text}`` of every glued value under ``build_dir/jupyter_execute``."""
    root = build_dir / "jupyter_execute"
    values: dict[str, str] = {}
    for path in sorted(root.rglob("*.glue.json")):
        doc = str(path.relative_to(root)).removesuffix(".glue.json")
        for name, output in json.loads(path.read_text(encoding="utf-8")).items():
            text = _text(output)
            if text is not None:
                values[f"{doc}:{name}"] = text
    for path in sorted(root.rglob("*.ipynb")):
        doc = str(path.relative_to(root)).removesuffix(".ipynb")
        notebook = json.loads(path.read_text(encoding="utf-8"))
        for cell in notebook.get("cells", []):
            for output in cell.get("outputs", []):
                name = output.get("metadata", {}).get("scrapbook", {}).get("name")
                text = _text(output) if name else None
                if text is not None:
                    values.setdefault(f"{doc}:{name}", text)
    return dict(sorted(values.items()))


def compare(before: dict[str, str], after: dict[str, str]) -> dict:
    """Counts and lists: identical, different, only before, only after."""
    common = sorted(set(before) & set(after))
    return {
        "identical": [k for k in common if before[k] == after[k]],
        "different": [k for k in common if before[k] != after[k]],
        "only_before": sorted(set(before) - set(after)),
        "only_after": sorted(set(after) - set(before)),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build_dir", nargs="?", default="_build", type=Path)
    parser.add_argument("-o", "--output", type=Path, help="write the snapshot here")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args(argv)
    if args.compare:
        before, after = (json.loads(p.read_text(encoding="utf-8")) for p in args.compare)
        result = compare(before, after)
        print(", ".join(f"{len(v)} {k.replace('_', ' ')}" for k, v in result.items()))
        for kind in ("different", "only_before", "only_after"):
            for key in result[kind]:
                print(f"{kind}: {key}: {before.get(key)!r} -> {after.get(key)!r}")
        return 0 if not (result["only_before"] or result["only_after"]) else 1
    values = snapshot(args.build_dir)
    if not values:
        print(f"no glued values under {args.build_dir / 'jupyter_execute'}", file=sys.stderr)
        return 1
    text = json.dumps(values, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    if args.output:
        args.output.write_text(text, encoding="utf-8")
        print(f"{len(values)} glued values -> {args.output}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
