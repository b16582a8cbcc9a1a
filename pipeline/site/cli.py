"""The command line of the report site: ``build`` the pages, or export a paper ``figure``."""

import argparse
from pathlib import Path

from pipeline.site.build import SITE_DIR, Site, build
from pipeline.site.runs import collect


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.site")
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("build", help="write reports/site/ (open reports/site/index.html)")
    make.add_argument("--out", type=Path, default=SITE_DIR, help="default: reports/site")
    make.add_argument("--runs", nargs="+", help="experiments of HEAD to include (default: all)")
    make.add_argument("--compare", nargs="+", help="run:task labels the Videos page compares")
    make.add_argument("--seeds", type=int, default=3, help="seeds per table row (default 3)")
    args = parser.parse_args(argv)
    if args.command == "build":
        site = Site(collect(args.runs), args.compare, seeds=args.seeds)
        print(f"site: wrote {build(site, args.out)}")
