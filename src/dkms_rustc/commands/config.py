"""``dkms-rustc config``: every setting in effect and where its value came from."""

from __future__ import annotations

import sys
from typing import Any

from dkms_rustc import config as configuration
from dkms_rustc.exitcodes import ExitCode
from dkms_rustc.options import ConfigOptions
from dkms_rustc.output import print_lines


def _value(settings: configuration.Settings, key: str) -> str:
    if key == "pin":
        return "; ".join(f"{pin.pattern} {pin.target}" for pin in settings.pins)
    if key == "search":
        return " ".join(str(path) for path in settings.search)
    if key == "trusted_dir":
        return " ".join(str(path) for path in settings.trusted_dirs)
    if key == "fallback_make_args":
        return " ".join(settings.fallback_make_args)
    if key == "cache_dir" and settings.cache_dir is None:
        from dkms_rustc.cache import default_cache_dir

        return str(default_cache_dir())  # root's /var/cache/dkms-rustc; a user's ~/.cache/...
    value = getattr(settings, key)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return configuration.KEYS[key][0]
    return str(value)


def effective(settings: configuration.Settings) -> list[dict[str, Any]]:
    return [
        {
            "key": key,
            "value": _value(settings, key),
            "origin": settings.origins.get(key, "default"),
            "description": description,
        }
        for key, (_default, description) in configuration.KEYS.items()
    ]


def run(args: ConfigOptions) -> int:
    if args.module is not None and not configuration.MODULE_NAME_RE.fullmatch(args.module):
        from dkms_rustc.text import printable

        print_lines(
            [
                f"ERROR: --module {printable(args.module)!r} is not a DKMS module name (letters, digits "
                "and ._+@- only, as in a [module NAME] section)"
            ]
        )
        return ExitCode.ERROR
    settings = configuration.load(args.config, args.module)
    rows = effective(settings)
    files = [str(configuration.SYSTEM_CONFIG)] + ([str(args.config)] if args.config else [])
    if args.json:
        from dkms_rustc import report

        data = {"files": files, "module": args.module, "settings": rows}
        sys.stdout.write(report.dumps(data) + "\n")
        return 0
    present = (
        "" if configuration.SYSTEM_CONFIG.exists() else " (it does not exist: every value is the default)"
    )
    out = [f"# configuration read from {', '.join(files)}{present}"]
    if args.module:
        out.append(f"# as seen by the build of DKMS module {args.module}")
    width = max(len(f"{row['key']} = {row['value']}") for row in rows)
    for row in rows:
        assignment = f"{row['key']} = {row['value']}"
        out.append(f"{assignment.ljust(width)}  # {row['origin']}")
    sys.stdout.write("\n".join(out) + "\n")
    return 0
