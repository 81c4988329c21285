"""The `kiln` command.

    kiln --version
    kiln --help
    kiln run -n N [-f HOSTFILE] script.py [args]   N data-parallel ranks through mpiexec
    kiln dump | explain            announced; they arrive with later issues

The subcommands hand off to compiler (dump, explain) and runtime (run); those not built yet
say so and exit with status 2 rather than pretend to work.
"""
import argparse
import sys

_COMING = {
    "dump": "print every graph, fusion decision, kernel source and PTX/SASS of a script",
    "explain": "explain why ops did or did not fuse, and where graph breaks happened",
}
_RUN = "run a script on N data-parallel ranks through mpiexec (kiln run -n N script.py)"


def _version():
    from framework import __version__
    return __version__


def build_parser():
    p = argparse.ArgumentParser(
        prog="kiln",
        description="Kiln: PyTorch's eager API over one IR, with a compiler you can read.",
        epilog="dump and explain are announced here and arrive with later issues; "
               "today they report that and exit with status 2.")
    p.add_argument("--version", action="store_true", help="print Kiln's version and exit")
    sub = p.add_subparsers(dest="command", metavar="{" + ",".join(list(_COMING) + ["run"]) + "}")
    for name, what in _COMING.items():
        sp = sub.add_parser(name, help=f"(coming in a later issue) {what}",
                            description=f"{what}. Not available yet: arrives with a later issue.")
        sp.add_argument("args", nargs=argparse.REMAINDER, help="arguments (ignored for now)")
    rp = sub.add_parser("run", help=_RUN, description=_RUN + "; also fine: mpiexec -n N python "
                        "script.py. When a rank fails, mpiexec stops the others.")
    rp.add_argument("-n", "--nproc", "-np", type=int, default=1, help="number of ranks")
    rp.add_argument("-f", "--hostfile", default=None,
                    help="MPI host file for several machines (passed to mpiexec -f)")
    rp.add_argument("script", help="Python script to run on every rank")
    rp.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")
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
    if ns.command == "run":
        from runtime.distributed import launcher
        try:
            rc = launcher.launch(ns.nproc, ns.script, ns.args, ns.hostfile)
        except (FileNotFoundError, ValueError) as e:
            print(e, file=sys.stderr)
            return 2
        if rc != 0:
            print(f"kiln run: {ns.nproc} rank(s) of {ns.script} failed; mpiexec exited with "
                  f"status {rc}", file=sys.stderr)
        return rc
    print(f"kiln {ns.command}: not available yet; it arrives with a later issue "
          f"({_COMING[ns.command]}).", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
