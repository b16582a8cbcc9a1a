"""The command line of the report site: ``build`` the pages, or export a paper ``figure``."""

import argparse
from pathlib import Path

from pipeline.site.build import SITE_DIR, Site, build, class_names, compared_sources
from pipeline.site.figure import export, figure_spec
from pipeline.site.runs import WORKSPACE, collect


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.site")
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("build", help="write reports/site/ (open reports/site/index.html)")
    make.add_argument("--out", type=Path, default=SITE_DIR, help="default: reports/site")
    make.add_argument("--runs", nargs="+", help="experiments of HEAD to include (default: all)")
    make.add_argument("--compare", nargs="+", help="run:task labels the Videos page compares")
    make.add_argument(
        "--seeds", type=int, help="seeds per table row (default: those run, per table)"
    )
    make.add_argument(
        "--tables-file", type=Path, default=Path("ablations.yaml"), help="table definitions"
    )
    fig = sub.add_parser("figure", help="the timelines of chosen videos as PDF and PNG")
    fig.add_argument("--videos", type=int, nargs="+", required=True, help="test indices")
    fig.add_argument("--compare", nargs="+", help="run:task labels (default: as build)")
    fig.add_argument("--out", type=Path, default=Path("reports/figures/timelines"))
    fig.add_argument("--width-in", type=float, default=7.0, help="inches (default 7.0)")
    fig.add_argument("--dpi", type=int, default=300, help="of the PNG (default 300)")
    args = parser.parse_args(argv)
    if args.command == "build":
        site = Site(collect(args.runs), args.compare, args.tables_file, args.seeds)
        print(f"site: wrote {build(site, args.out)}")
    else:
        names = [label.split(":")[0] for label in args.compare or ()]
        names = [name for name in names if name != WORKSPACE]
        sources = compared_sources(Site(collect(names or None), args.compare))
        spec = figure_spec(args.videos, sources, class_names(sources), args.width_in)
        for path in export(spec, args.out, args.dpi):
            print(f"figure: wrote {path}")
