"""torch.distributed.launch for Kiln (deprecated in PyTorch in favour of torchrun; kept because
tutorials still use it).

    python -m framework.distributed.launch --nproc_per_node=4 main.py --epochs 3

torchrun's options (framework/distributed/run.py) plus --use-env/--use_env. Without --use-env
every worker gets `--local-rank=<k>` before the script's own arguments (argparse in the script
then reads it as --local-rank or, with dest, --local_rank); LOCAL_RANK, RANK, WORLD_SIZE,
LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT are in the environment either way. Each call of
main() warns with PyTorch's FutureWarning.
"""
import warnings

from .run import get_args_parser, run

__all__ = ["parse_args", "launch", "main"]

_DEPRECATED = (
    "The module torch.distributed.launch is deprecated\n"
    "and will be removed in future. Use torchrun.\n"
    "Note that --use-env is set by default in torchrun.\n"
    "If your script expects `--local-rank` argument to be set, please\n"
    "change it to read from `os.environ['LOCAL_RANK']` instead. See \n"
    "https://pytorch.org/docs/stable/distributed.html#launch-utility for \n"
    "further instructions\n")


def parse_args(args):
    parser = get_args_parser()
    parser.add_argument(
        "--use-env", "--use_env", default=False, action="store_true",
        help="Use environment variable to pass 'local rank'. For legacy reasons, the default "
             "value is False. If set to True, the script will not pass --local-rank as "
             "argument, and will instead set LOCAL_RANK.")
    return parser.parse_args(args)


def launch(args):
    if args.no_python and not args.use_env:
        raise ValueError("When using the '--no-python' flag, you must also set the '--use-env' "
                         "flag.")
    run(args)


def main(args=None):
    warnings.warn(_DEPRECATED, FutureWarning, stacklevel=2)
    args = parse_args(args)
    launch(args)


if __name__ == "__main__":
    main()
