"""Run every benchmark module and write bench/REPORT.md.

Each module in ``MODULES`` has ``run(report: Report, quick: bool) -> None`` and adds a section.
``python -m bench.run --quick`` runs shortened versions (used by a smoke test).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from bench.report import Report

MODULES = [
    "bench.bench_color",
    "bench.bench_display",
    "bench.bench_media",
    "bench.bench_storage",
    "bench.bench_player",
    "bench.bench_contention",
    "bench.bench_uploads",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs, for a smoke test")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("REPORT.md"))
    parser.add_argument("--only", action="append", help="run only these modules (by suffix)")
    args = parser.parse_args(argv)
    report = Report()
    for name in MODULES:
        if args.only and not any(name.endswith(o) for o in args.only):
            continue
        module = importlib.import_module(name)
        print(f"bench: {name}", file=sys.stderr)
        module.run(report, args.quick)
    text = report.render()
    soak = Path(__file__).with_name("soak.md")  # written by `nox -s soak`, kept across bench runs
    if soak.exists():
        text = text.rstrip("\n") + "\n\n" + soak.read_text()
    args.out.write_text(text)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
