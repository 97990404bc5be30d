"""`getResolvedOptions` as Glue documents it: each name must be present as `--name value`; others are ignored."""

import argparse


def getResolvedOptions(args, options):  # noqa: N802 - Glue's name
    parser = argparse.ArgumentParser(add_help=False)
    for name in options:
        parser.add_argument(f"--{name}", required=True)
    known, _ = parser.parse_known_args(args[1:])
    return vars(known)
