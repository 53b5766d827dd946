"""The ``spd`` command line: a thin layer over the Python API."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback

from .. import __version__
from ..ops.errors import SPDError
from . import convert, data, demo, export, model, predict, serve, train


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spd", description="SPD: multi-task human parsing")
    parser.add_argument("--version", action="version", version=f"spd {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (demo, train, predict, export, convert, serve, data, model):
        module.add_parser(sub)
    return parser


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s: %(message)s")
    # The lightning package gives its logger a console handler of its own (same format); passed on
    # to the root handler as well, every Lightning message would print twice.
    logging.getLogger("lightning").propagate = False
    # The logger Lightning's rank_zero_info writes to (named before it is imported: the same object then).
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_no_advert)


def _no_advert(record: logging.LogRecord) -> bool:
    """Lightning advertises a cloud logging service at every fit; not a message about the user's run."""
    return not str(record.msg).startswith("💡 Tip")


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit:  # argparse: --help (0) or a bad argument, already named on stderr (2)
        return int(exit.code or 0)
    setup_logging(args.verbose)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # here, so that a closed pipe is caught below rather than at exit
        return code
    except BrokenPipeError:
        # The reader went away (`spd ... | head`): not an error of ours; stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except SPDError as err:  # something the user gave is wrong: the message says what; anything else is a bug
        return _report(err, args.verbose)
    except OSError as err:  # missing files, permissions, a full disk, a name too long, ...: the OS names the path
        return _report(err, args.verbose)


def _report(err: BaseException, verbose: bool) -> int:
    if verbose:
        traceback.print_exc()
    print(f"spd: error: {err}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
