"""Every exit status dkms-rustc uses, for every command: the one table.

DKMS ends ``dkms build`` with the PRE_BUILD script's own status (3.1.5 and newer), and DKMS's
own table already gives 1-13, 21 and 101 other meanings (1: not root, 3: already built,
4: broken module, 10: build failed, ...). So none of these values is one of DKMS's, except 77,
which means the same to both: "skipped, this kernel is not for this module". The shell
scripts in ``dkms/`` use the same numbers (a test compares them with this module).
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """The exit status of a dkms-rustc command."""

    OK = 0  # a matching rustc was selected, or a warn/fallback policy let the build go on
    REFUSED = 40  # no installed rustc fits the kernel: the module build must not start
    NO_METADATA = 41  # Rust is on, but the headers lack rust/*.rmeta, the crate metadata
    ERROR = 42  # nothing could be decided: kernel tree missing or unreadable, bad configuration
    INTERNAL_ERROR = 43  # a bug in dkms-rustc; pre-build still stops the module build
    HOOK_FAILED = 44  # a hook was told to fail (kernel_hook_fail, package_hook_fail = yes)
    USAGE = 64  # bad command line (sysexits.h EX_USAGE)
    INTERRUPTED = 130  # stopped by Ctrl-C (128 + SIGINT), as shells report it
    NO_RUST = 77  # the kernel is built without Rust: DKMS's own "skipped"


HELP = f"""\
exit status (the same for every command; none is one of DKMS's own, but 77, DKMS's "skipped"):
  {ExitCode.OK:<3} ok: a matching rustc was selected (or a warn/fallback policy let the build go on)
  {ExitCode.REFUSED:<3} refused: no installed rustc fits the kernel; the build must not start
  {ExitCode.NO_METADATA:<3} no-metadata: the kernel has Rust enabled, but its headers lack the compiled
      Rust files (rust/*.rmeta, "crate metadata") that every Rust module is built against
  {ExitCode.ERROR:<3} error: nothing could be decided (kernel tree missing or unreadable, unusable
      configuration file, hand-off not writable)
  {ExitCode.INTERNAL_ERROR:<3} internal error: a bug in dkms-rustc (pre-build still stops the build)
  {ExitCode.HOOK_FAILED:<3} a hook told to fail did: check --kernel-hook (kernel_hook_fail = yes) when
      Rust modules will not build, upgrade-check (package_hook_fail = yes) when a kernel loses its rustc
  {ExitCode.USAGE:<3} usage error: bad command line
  {ExitCode.NO_RUST:<3} no-rust: the kernel is built without Rust (DKMS's "skipped" status)
"""
