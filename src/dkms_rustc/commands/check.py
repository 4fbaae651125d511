"""``dkms-rustc check``: the admin's report for one kernel. Writes nothing but the cache.

With ``--kernel-hook`` it is what the kernel package hook runs for a newly installed kernel
(``/etc/kernel/postinst.d/50-dkms-rustc``): quiet when no Rust module is registered with
DKMS or when they will build, a banner the package manager's output cannot hide when they
will not, and a failure only when the admin asked for one (``kernel_hook_fail = yes``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from dkms_rustc import report
from dkms_rustc.commands._shared import ConfigFileError, cache_from, search_dirs, settings_from
from dkms_rustc.config import Settings
from dkms_rustc.decision import Reason, Verdict, error_decision
from dkms_rustc.engine import Assessment, Request, assess
from dkms_rustc.exitcodes import ExitCode
from dkms_rustc.kernel import is_kernel_release
from dkms_rustc.options import CheckOptions
from dkms_rustc.output import environ_kernelver, print_lines

_BANNER = "*" * 72


def _kernel_dir(args: CheckOptions, release: str | None) -> Path | None:
    """--kernel-dir, or (for tests) the release's tree under a --modules-dir other than /lib/modules."""
    if args.kernel_dir is None and args.modules_dir is not None and release:
        return Path(args.modules_dir) / release / "build"
    kernel_dir: Path | None = args.kernel_dir
    return kernel_dir


def run(args: CheckOptions) -> int:
    settings = settings_from(args)
    if args.kernel_hook:
        return _kernel_hook_never_crashes(args, settings)
    request = Request(
        kernel_dir=_kernel_dir(args, args.kernelver),
        kernelrelease=args.kernelver or (None if args.kernel_dir else environ_kernelver()),
        search=search_dirs(args),
    )
    return _report(args, assess(request, settings, cache_from(args, settings)))


def unusable_configuration(args: CheckOptions, error: ConfigFileError) -> int:
    """The report says so (exit ERROR); the kernel hook must not block a kernel upgrade."""
    if args.kernel_hook:
        print_lines([f"kernel hook: {error}"])
        return ExitCode.OK
    return _report(args, Assessment(error_decision(str(error), Reason.CONFIGURATION)))


def _report(args: CheckOptions, assessment: Assessment) -> int:
    if args.json:
        sys.stdout.write(report.dumps(report.as_json(assessment, args.verbose)) + "\n")
    else:
        print_lines(report.human_lines(assessment, args.verbose), sys.stdout)
    return assessment.decision.exit_code


def _kernel_hook_never_crashes(args: CheckOptions, settings: Settings) -> int:
    """The kernel hook must not block a kernel upgrade because of a bug in this tool."""
    try:
        return kernel_hook(args, settings)
    except Exception as error:
        import os

        if os.environ.get("DKMS_RUSTC_DEBUG"):
            raise
        release = args.kernelver or environ_kernelver() or "KVER"
        print_lines(
            [
                f"kernel hook: dkms-rustc failed (internal error {type(error).__name__}); the kernel "
                "upgrade goes on, and DKMS's own build will say whether the Rust modules build; "
                f"check with: dkms-rustc check -k {release if is_kernel_release(release) else 'KVER'}"
            ]
        )
        return 0


def kernel_hook(args: CheckOptions, settings: Settings) -> int:
    from dkms_rustc.dkmsmodules import registered_modules

    release = args.kernelver or environ_kernelver()
    which = f"kernel {release}" if release else f"the kernel in {args.kernel_dir}"
    modules = [module for module in registered_modules(args.dkms_tree, args.dkms_etc) if module.is_rust]
    if not modules:
        print_lines([f"{which}: no Rust module is registered with DKMS; nothing to check"])
        return 0
    names = ", ".join(f"{module.name}/{module.version}" for module in modules)
    request = Request(
        kernel_dir=_kernel_dir(args, release),
        kernelrelease=release,
        search=search_dirs(args),
        may_install=True,
    )
    assessment = assess(request, settings, cache_from(args, settings))
    decision = assessment.decision
    if decision.verdict is Verdict.OK:
        rustc = decision.rustc.version_text if decision.rustc else "the kernel's rustc"
        print_lines([f"{which}: Rust DKMS modules ({names}) will be built with {rustc}"])
        return 0
    if decision.verdict is Verdict.NO_RUST:
        print_lines([f"{which} is built without Rust: Rust DKMS modules ({names}) are skipped for it"])
        return 0
    if decision.verdict is Verdict.ERROR and decision.kernel is None:
        print_lines(
            [
                f"{which}: its headers cannot be read yet ({decision.headline}); the Rust DKMS modules "
                f"({names}) are checked again when the headers package is configured"
            ]
        )
        return 0
    lines = [
        _BANNER,
        f"WARNING: the Rust DKMS modules {names} will NOT build for {which}.",
        *report.human_lines(assessment, args.verbose),
        f"after fixing it, check again with: dkms-rustc check -k {release or 'KVER'}",
        _BANNER,
    ]
    print_lines(lines)
    if settings.syslog:
        from dkms_rustc import logsink

        logsink.send(lines[1:-1], failed=True, context="kernel hook")
    if settings.kernel_hook_fail:
        print_lines(
            [f"kernel_hook_fail = yes ({settings.origins.get('kernel_hook_fail')}): failing the hook"]
        )
        return ExitCode.HOOK_FAILED
    return 0
