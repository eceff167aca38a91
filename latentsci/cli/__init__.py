"""The `latentsci` command: one small module per verb group over shared argument helpers
(`args`); the library does the work, and verbs that mirror a stage take its config's defaults.

pipelines  run, submit, status, logs
stores     query
latent     interpolate, ood
search     score
molecules  encode, sample, evaluate
fields     rollout
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from latentsci.errors import LatentsciError, one_line

EPILOG = """examples:
  latentsci run pipelines/zinc_ingest.toml
  latentsci run pipelines/zinc_ingest.toml --force fingerprints
  latentsci submit pipelines/zinc_ingest.toml --address http://127.0.0.1:8265
  latentsci status
  latentsci logs raysubmit_XXXX
  latentsci query runs/zinc_ingest/stages/fingerprints-*/fingerprints.zarr --where "qed > 0.9" --limit 5
  latentsci sample -n 10 --out s.smi
"""


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage mistakes are one line `error: ...` with exit code 2, like every other
    user mistake (its verbs' parsers are of this class too)."""

    def error(self, message: str) -> NoReturn:
        """Print the mistake and where help is, on one line, and exit 2."""
        self.exit(2, f"error: {self.prog}: {one_line(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: every verb group's verbs, flags and examples."""
    from latentsci.cli import fields, latent, molecules, optimize, pipelines, search, stores

    top = OneLineParser(prog="latentsci", epilog=EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        description="Learn, store and query scientific latent spaces with Ray, "
                                    "Zarr and MLflow.")
    verbs = top.add_subparsers(dest="verb", required=True, metavar="VERB")
    for group in (pipelines, stores, latent, molecules, fields, search, optimize):
        group.add_verbs(verbs)
    return top


def main(argv: list[str] | None = None) -> int:
    """Parse, dispatch, and turn user mistakes into one line on stderr with exit code 2."""
    from latentsci.runtime.signals import exit_code, signal_name, stop_on_signals

    args = build_parser().parse_args(argv)
    try:
        with stop_on_signals():
            return args.fn(args)
    except LatentsciError as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"error: stopped by {signal_name(exc)}", file=sys.stderr)
        return exit_code(exc)
