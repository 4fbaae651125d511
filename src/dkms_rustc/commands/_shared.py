"""Option handling shared by the subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path

from dkms_rustc.cache import Cache, default_cache_dir
from dkms_rustc.config import ConfigFileError, Settings, load


def settings_from(args: argparse.Namespace, module: str | None = None) -> Settings:
    """Settings from the files; ConfigFileError when they are unusable."""
    return load(args.config, module)


def cache_from(args: argparse.Namespace, settings: Settings) -> Cache:
    if args.no_cache:
        return Cache(None)
    return Cache(settings.cache_dir or default_cache_dir())


def search_dirs(args: argparse.Namespace) -> tuple[Path, ...]:
    return tuple(Path(directory).absolute() for directory in args.search)


__all__ = ["ConfigFileError", "cache_from", "search_dirs", "settings_from"]
