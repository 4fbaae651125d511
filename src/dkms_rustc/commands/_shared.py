"""Option handling shared by the subcommands, and the decision step of the build commands.

An unusable configuration file raises :class:`ConfigFileError` from :func:`settings_from`;
:mod:`dkms_rustc.cli` catches it in one place and asks the subcommand what that means for it
(its ``unusable_configuration`` function, when it has one: the build commands must still stop
make, the hooks must not block a package manager), else reports it with ExitCode.ERROR.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from dkms_rustc import fileio, report, warm
from dkms_rustc.cache import Cache, default_cache_dir
from dkms_rustc.config import ConfigFileError, Policy, Settings, load
from dkms_rustc.decision import Reason, error_decision
from dkms_rustc.engine import Assessment, Request, assess
from dkms_rustc.kernel import is_kernel_release
from dkms_rustc.options import Common, EnvOptions, PreBuildOptions
from dkms_rustc.output import environ_kernelver, print_lines


def settings_from(args: Common, module: str | None = None) -> Settings:
    """Settings from the files; ConfigFileError when they are unusable."""
    settings = load(args.config, module)
    fileio.trust_directories(settings.trusted_dirs)
    return settings


def cache_from(args: Common, settings: Settings) -> Cache:
    """The cache of remembered results (none with --no-cache); a warm replay keeps its record there."""
    directory = None if args.no_cache else (settings.cache_dir or default_cache_dir())
    warm.use_cache_dir(str(directory) if directory is not None else None)
    return Cache(directory)


def search_dirs(args: Common) -> tuple[Path, ...]:
    return tuple(Path(directory).absolute() for directory in args.search)


def decide_for_build(
    args: PreBuildOptions | EnvOptions,
    module: str | None,
    excluded: tuple[Path, ...],
    policy: Policy | None = None,
) -> tuple[Assessment, str, list[str]]:
    """What ``pre-build`` and ``env`` share: settings, the assessment for a build about to
    happen (so ``auto_install`` may run), its lines on stderr (and syslog when configured).
    Returns the assessment, the kernel release to name in a refusal, and the lines printed."""
    settings = settings_from(args, module)
    if policy:
        settings = replace(settings, policy=policy, origins={**settings.origins, "policy": "--policy"})
    request = Request(
        kernel_dir=args.kernel_dir,
        kernelrelease=args.kernelver or environ_kernelver(),
        search=search_dirs(args),
        excluded=excluded,
        may_install=True,
    )
    assessment = assess(request, settings, cache_from(args, settings))
    lines = report.human_lines(assessment, args.verbose)
    print_lines(lines)
    if settings.syslog:
        from dkms_rustc import logsink

        failed = not assessment.decision.build_may_proceed
        logsink.send(lines, failed=failed, context=f"module {module or '?'}")
    return assessment, _release_to_name(assessment, args), lines


def configuration_refusal(
    args: PreBuildOptions | EnvOptions, error: ConfigFileError
) -> tuple[Assessment, str, list[str]]:
    """What ``pre-build`` and ``env`` decide when the configuration is unusable (nothing, so
    the build must stop), printed like any decision."""
    assessment = Assessment(error_decision(str(error), Reason.CONFIGURATION))
    lines = report.human_lines(assessment, args.verbose)
    print_lines(lines)
    return assessment, _release_to_name(assessment, args), lines


def _release_to_name(assessment: Assessment, args: PreBuildOptions | EnvOptions) -> str:
    kernel = assessment.decision.kernel
    release = (kernel.kernelrelease if kernel else None) or args.kernelver or environ_kernelver() or "KVER"
    # Only a kernel release is ever written into a refusal, never what a caller passed.
    return release if is_kernel_release(release) else "KVER"


__all__ = [
    "ConfigFileError",
    "cache_from",
    "configuration_refusal",
    "decide_for_build",
    "search_dirs",
    "settings_from",
]
