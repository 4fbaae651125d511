"""``dkms-rustc check``: the admin's report for one kernel. Writes nothing but the cache."""

from __future__ import annotations

import argparse
import sys

from dkms_rustc import report
from dkms_rustc.cli import environ_kernelver, print_lines
from dkms_rustc.commands._shared import ConfigFileError, cache_from, search_dirs, settings_from
from dkms_rustc.decision import error_decision
from dkms_rustc.engine import Assessment, Request, assess


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
    except ConfigFileError as error:
        assessment = Assessment(error_decision(str(error)))
    else:
        request = Request(
            kernel_dir=args.kernel_dir,
            kernelrelease=args.kernelver or (None if args.kernel_dir else environ_kernelver()),
            search=search_dirs(args),
        )
        assessment = assess(request, settings, cache_from(args, settings))
    if args.json:
        sys.stdout.write(report.dumps(report.as_json(assessment, args.verbose)) + "\n")
    else:
        print_lines(report.human_lines(assessment, args.verbose), sys.stdout)
    return assessment.decision.exit_code
