"""``dkms-rustc status``: every installed kernel against the installed toolchains, and every
Rust module registered with DKMS, in one table. Toolchains are discovered and examined once."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dkms_rustc import report
from dkms_rustc.commands._shared import cache_from, search_dirs, settings_from
from dkms_rustc.decision import Reason, Verdict
from dkms_rustc.dkmsmodules import DkmsModule, registered_modules
from dkms_rustc.engine import Assessment, Request, assess, prepare_toolchains
from dkms_rustc.exitcodes import ExitCode
from dkms_rustc.fileio import exists, is_symlink, listing_problem
from dkms_rustc.options import StatusOptions
from dkms_rustc.text import printable

MODULES_DIR = Path("/lib/modules")
_NUMBER_RE = re.compile(r"(\d+)")


@dataclass(frozen=True)
class KernelEntry:
    release: str | None  # None: read from the tree (--kernel-dir)
    tree: Path
    running: bool


def _release_key(release: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in _NUMBER_RE.split(release)]


def installed_kernels(
    modules_dirs: list[Path], kernel_dirs: list[Path], running: str | None
) -> list[KernelEntry]:
    """``<modules dir>/*/build`` (newest first), the explicitly named trees, and the running kernel."""
    entries: list[KernelEntry] = []
    seen: set[str] = set()
    for modules_dir in modules_dirs:
        try:
            releases = [] if listing_problem(modules_dir) else os.listdir(modules_dir)
        except OSError:
            releases = []
        releases.sort(key=_release_key, reverse=True)
        for release in releases:
            build = modules_dir / release / "build"
            if release in seen or not (exists(build) or is_symlink(build)):
                continue
            seen.add(release)
            entries.append(KernelEntry(release, build, release == running))
    if running and running not in seen and modules_dirs:
        entries.insert(0, KernelEntry(running, modules_dirs[0] / running / "build", True))
    for tree in kernel_dirs:
        entries.append(KernelEntry(None, tree.absolute(), False))
    return entries


def _row(entry: KernelEntry, assessment: Assessment) -> list[str]:
    decision = assessment.decision
    kernel = decision.kernel
    name = (kernel.kernelrelease if kernel else None) or entry.release or str(entry.tree)
    if entry.running:
        name += " (running)"
    if decision.verdict is Verdict.NO_RUST:
        needs = "no Rust in this kernel"
    elif kernel is not None and kernel.expected_rustc:
        needs = kernel.expected_rustc
    else:
        needs = "-"
    if decision.rustc is not None:
        rustc = str(decision.rustc.binary)
    elif decision.verdict is Verdict.REFUSED:
        usable = sum(1 for tool in assessment.rustcs if tool.usable)
        rustc = f"none matches ({usable} usable rustc found)"
        refusal = decision.refusal.reason if decision.refusal else None
        if refusal in (Reason.COMPILER_FAILED, Reason.METADATA_UNLOADABLE):
            rustc = "the matching rustc failed the test compile"
        elif refusal is Reason.MATCH_UNTRUSTED:
            rustc = "only untrusted copies match"
        elif refusal is Reason.NO_BINDGEN:
            rustc = "a matching rustc, but no suitable bindgen"
    elif decision.verdict is Verdict.NO_METADATA:
        rustc = "none can work: the headers lack the Rust metadata"
    elif decision.verdict is Verdict.ERROR and not exists(entry.tree):
        rustc = "cannot tell: its headers are not installed (no DKMS module can build for it)"
    elif decision.verdict is Verdict.ERROR:
        rustc = "cannot tell: kernel tree unreadable"
    else:
        rustc = "-"
    if decision.bindgen is not None:
        bindgen = decision.bindgen.version_text or str(decision.bindgen.binary)
    elif decision.verdict is Verdict.OK:
        bindgen = "none suitable"
    else:
        bindgen = "-"
    todo = (
        "; ".join(decision.fixes)
        if decision.fixes
        else ("nothing" if decision.verdict is Verdict.OK else "-")
    )
    if decision.verdict is Verdict.NO_RUST:
        todo = "nothing (Rust modules are skipped for it)"
    return [report.short_verdict_word(decision), name, needs, rustc, bindgen, todo]


def table(rows: list[list[str]]) -> list[str]:
    header = ["VERDICT", "KERNEL", "NEEDS", "RUSTC", "BINDGEN", "WHAT TO DO"]
    all_rows = [header, *rows]
    widths = [max(len(row[column]) for row in all_rows) for column in range(len(header) - 1)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths)) + "  " + row[-1]
        for row in all_rows
    ]


def _module_lines(modules: list[DkmsModule], results: list[tuple[KernelEntry, Assessment]]) -> list[str]:
    lines: list[str] = []
    for module in modules:
        how = "dkms-rustc" if module.uses_dkms_rustc else "NOT dkms-rustc (add its dkms.conf lines)"
        states: list[str] = []
        for entry, assessment in results:
            kernel = assessment.decision.kernel
            release = (kernel.kernelrelease if kernel else None) or entry.release
            build = module.build_for(release)
            if build is not None:
                state = "installed" if build.installed else "built, not installed"
            elif assessment.decision.verdict is Verdict.OK:
                state = "not built, would build"
            elif assessment.decision.verdict is Verdict.NO_RUST:
                state = "skipped (no Rust)"
            else:
                state = "not built, would be refused"
            states.append(f"{release or entry.tree}: {state}")
        lines.append(
            f"{module.name}/{module.version} [{how}; Rust because {', '.join(module.rust_reasons)}]: "
            + ("; ".join(states) or "no kernels")
        )
    return lines


def _module_json(module: DkmsModule) -> dict[str, Any]:
    return {
        "name": module.name,
        "version": module.version,
        "source": str(module.source),
        "rust_reasons": list(module.rust_reasons),
        "uses_dkms_rustc": module.uses_dkms_rustc,
        "builds": [
            {"kernel": build.kernelrelease, "arch": build.arch, "installed": build.installed}
            for build in module.builds
        ],
    }


def run(args: StatusOptions) -> int:
    settings = settings_from(args)
    cache = cache_from(args, settings)
    explicit = bool(args.modules_dir or args.kernel_dir)
    modules_dirs = list(args.modules_dir) if args.modules_dir else ([] if args.kernel_dir else [MODULES_DIR])
    running = None if explicit else os.uname().release
    kernels = installed_kernels(modules_dirs, list(args.kernel_dir), running)
    search = search_dirs(args)
    prepared = prepare_toolchains(Request(None, None, search), settings, cache)
    results: list[tuple[KernelEntry, Assessment]] = []
    for entry in kernels:
        request = Request(kernel_dir=entry.tree, kernelrelease=entry.release, search=search)
        results.append((entry, assess(request, settings, cache, prepared=prepared)))
    modules = [module for module in registered_modules(args.dkms_tree, args.dkms_etc) if module.is_rust]
    cannot = [
        entry
        for entry, assessment in results
        if assessment.decision.verdict not in (Verdict.OK, Verdict.NO_RUST)
        # A kernel without headers builds no DKMS module at all: not a Rust problem to flag.
        and exists(entry.tree)
    ]
    # Every kernel can build Rust modules (or has no Rust at all), or at least one cannot.
    code = ExitCode.REFUSED if cannot else ExitCode.OK

    if args.json:
        data = {
            "exit_code": int(code),
            "kernels": [
                {**report.as_json(assessment, args.verbose), "running": entry.running}
                for entry, assessment in results
            ],
            "modules": [_module_json(module) for module in modules],
            "dkms_tree": str(args.dkms_tree),
        }
        sys.stdout.write(report.dumps(data) + "\n")
        return code

    usable = sum(1 for tool in prepared.rustcs if tool.usable)
    no_headers = sum(1 for entry, _ in results if not exists(entry.tree))
    ok = len(results) - len(cannot) - no_headers
    without = f" ({no_headers} without headers)" if no_headers else ""
    summary = (
        f"{ok} of {len(results)} kernels can build Rust modules{without}"
        if results
        else f"no kernel build trees found (looked in {', '.join(map(str, modules_dirs)) or 'nothing'})"
    )
    out = [
        f"{'OK' if not cannot else 'ATTENTION'}: {summary}; {usable} usable rustc installed; "
        f"{len(modules)} Rust DKMS module{'s' if len(modules) != 1 else ''} registered in {args.dkms_tree}"
    ]
    if results:
        out += ["", *table([_row(entry, assessment) for entry, assessment in results])]
    if modules:
        out += ["", "Rust DKMS modules:"] + [f"  {line}" for line in _module_lines(modules, results)]
    if args.verbose:
        for entry, assessment in results:
            out += ["", f"kernel {entry.release or entry.tree}:"]
            out += [f"  {line}" for line in report.human_lines(assessment, True)]
    # Names come from directories others may have made: nothing a terminal would interpret.
    sys.stdout.write("\n".join(printable(line) for line in out) + "\n")
    return code
