"""The `kiln` command.

    kiln --version
    kiln --help
    kiln dump | explain | run      announced; they arrive with later issues

The subcommands hand off to compiler (dump, explain) and runtime (run) once those exist; until
then they say so and exit with status 2 rather than pretend to work.
"""
import argparse
import sys

_COMING = {
    "dump": "print every graph, fusion decision, kernel source and PTX/SASS of a script",
    "explain": "explain why ops did or did not fuse, and where graph breaks happened",
    "run": "run a script on N data-parallel ranks through mpiexec (kiln run -n N script.py)",
}


def _version():
    from framework import __version__
    return __version__


def build_parser():
    p = argparse.ArgumentParser(
        prog="kiln",
        description="Kiln: PyTorch's eager API over one IR, with a compiler you can read.",
        epilog="dump, explain and run are announced here and arrive with later issues; "
               "today they report that and exit with status 2.")
    p.add_argument("--version", action="store_true", help="print Kiln's version and exit")
    sub = p.add_subparsers(dest="command", metavar="{" + ",".join(_COMING) + "}")
    for name, what in _COMING.items():
        sp = sub.add_parser(name, help=f"(coming in a later issue) {what}",
                            description=f"{what}. Not available yet: arrives with a later issue.")
        sp.add_argument("args", nargs=argparse.REMAINDER, help="arguments (ignored for now)")
    return p


def main(argv=None):
    p = build_parser()
    ns = p.parse_args(argv)
    if ns.version:
        print(f"kiln {_version()}")
        return 0
    if ns.command is None:
        p.print_help()
        return 0
    print(f"kiln {ns.command}: not available yet; it arrives with a later issue "
          f"({_COMING[ns.command]}).", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
