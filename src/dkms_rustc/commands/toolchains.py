"""``dkms-rustc toolchains``: every rustc and bindgen found and whether it can be used."""

from __future__ import annotations

import sys

from dkms_rustc import report
from dkms_rustc.commands._shared import cache_from, search_dirs, settings_from
from dkms_rustc.engine import PROBE_BUDGET, Request, discover_toolchains
from dkms_rustc.options import ToolchainsOptions
from dkms_rustc.output import print_lines
from dkms_rustc.runner import Deadline


def run(args: ToolchainsOptions) -> int:
    settings = settings_from(args)
    request = Request(kernel_dir=None, kernelrelease=None, search=search_dirs(args))
    found, rustcs, bindgens = discover_toolchains(
        request, settings, cache_from(args, settings), Deadline(PROBE_BUDGET)
    )
    if args.json:
        data = {
            "candidates": [report.tool_json(tool) for tool in [*rustcs, *bindgens]],
            "rustup_proxies": found.proxies,
        }
        sys.stdout.write(report.dumps(data) + "\n")
        return 0
    usable = sum(1 for tool in rustcs if tool.usable)
    lines = [
        f"{usable} usable rustc of {len(rustcs)} found, "
        f"{sum(1 for tool in bindgens if tool.usable)} usable bindgen of {len(bindgens)}"
    ]
    lines += [f"rustc {report.tool_line(tool)}" for tool in rustcs]
    lines += [f"bindgen {report.tool_line(tool)}" for tool in bindgens]
    lines += [f"rustup proxy {proxy}: not used itself; its toolchains are listed" for proxy in found.proxies]
    if args.verbose:
        lines += [f"evidence: {item}" for item in found.evidence]
    print_lines(lines, sys.stdout)
    return 0
