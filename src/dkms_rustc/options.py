"""What each subcommand is asked to do: one frozen value per command line, typed.

:func:`dkms_rustc.arguments.parse` makes them from the command line; the subcommands under
:mod:`dkms_rustc.commands` take them and never see argparse. Every field has the default
the command line gives it, so tests and other callers can build one directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DKMS_TREE = Path("/var/lib/dkms")
DKMS_ETC = Path("/etc/dkms")


@dataclass(frozen=True)
class Common:
    """Options every command that looks at toolchains takes."""

    search: tuple[Path, ...] = ()  # --search DIR (repeatable)
    config: Path | None = None  # --config FILE, read after /etc/dkms-rustc.conf
    no_cache: bool = False
    verbose: bool = False


@dataclass(frozen=True)
class CheckOptions(Common):
    """``dkms-rustc check``: one kernel, the admin's report (or the kernel hook's)."""

    kernel_dir: Path | None = None
    kernelver: str | None = None
    json: bool = False
    kernel_hook: bool = False
    dkms_tree: Path = DKMS_TREE
    dkms_etc: Path = DKMS_ETC
    modules_dir: Path | None = None


@dataclass(frozen=True)
class StatusOptions(Common):
    """``dkms-rustc status``: every kernel and Rust DKMS module at a glance."""

    modules_dir: tuple[Path, ...] = ()
    kernel_dir: tuple[Path, ...] = ()
    dkms_tree: Path = DKMS_TREE
    dkms_etc: Path = DKMS_ETC
    json: bool = False


@dataclass(frozen=True)
class PreBuildOptions(Common):
    """``dkms-rustc pre-build``: what DKMS runs before make."""

    kernel_dir: Path | None = None
    kernelver: str | None = None
    build_dir: Path | None = None
    module: str | None = None
    policy: str | None = None  # --policy, one of config.POLICIES


@dataclass(frozen=True)
class EnvOptions(Common):
    """``dkms-rustc env``: shell lines for DKMS's build_environment file."""

    kernel_dir: Path | None = None
    kernelver: str | None = None
    module: str | None = None
    module_version: str | None = None
    source_dir: Path | None = None
    dkms_etc: Path = DKMS_ETC


@dataclass(frozen=True)
class ToolchainsOptions(Common):
    """``dkms-rustc toolchains``: every rustc and bindgen found."""

    json: bool = False


@dataclass(frozen=True)
class ConfigOptions(Common):
    """``dkms-rustc config``: the settings in effect and where each came from."""

    module: str | None = None
    json: bool = False


@dataclass(frozen=True)
class UpgradeCheckOptions(Common):
    """``dkms-rustc upgrade-check``: the package-manager hook around a transaction."""

    before: bool = False
    after: bool = False
    changing_stdin: bool = False  # --before: the files the transaction changes, on stdin
    modules_dir: tuple[Path, ...] = ()
    dkms_tree: Path = DKMS_TREE
    dkms_etc: Path = DKMS_ETC
