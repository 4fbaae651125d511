"""The configuration file: parsed, never sourced; trust widening only from the system file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dkms_rustc import config
from dkms_rustc.config import ConfigFileError, Settings, load, parse

SAMPLE = """\
# comment
policy = warn
search = /opt/rust
search = /opt/other
proof = no
[module bcachefs]
policy = fallback
fallback_make_args = BCACHEFS_RUST=n
[module other]
policy = select
"""


def test_global_and_module_sections() -> None:
    settings = parse(SAMPLE, "f", "bcachefs", system=True, base=Settings())
    assert settings.policy == "fallback"
    assert settings.fallback_make_args == ("BCACHEFS_RUST=n",)
    assert settings.search == (Path("/opt/rust"), Path("/opt/other"))
    assert settings.proof is False
    assert settings.origins["policy"] == "f:7 [module bcachefs]"


def test_other_modules_keep_the_global_value() -> None:
    assert parse(SAMPLE, "f", "zfs", system=True, base=Settings()).policy == "warn"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("policy = maybe", "policy must be one of"),
        ("colour = blue", "unknown key 'colour'"),
        ("just words", "expected key = value"),
        ("search = relative/dir", "not an absolute path"),
        ("proof = perhaps", "expected yes or no"),
        ("[section]", "expected \\[module NAME\\]"),
        ("[module x]\nsearch = /a", "cannot be set per module"),
        ("fallback_make_args = A=$(shell id)", "not a plain make argument"),
        ("$(reboot)", "expected key = value"),
    ],
)
def test_malformed_lines_name_file_and_line(text: str, message: str) -> None:
    with pytest.raises(ConfigFileError, match=message) as info:
        parse("# ok\n" + text, "conf", None, system=True, base=Settings())
    assert "conf:" in str(info.value)


def test_trusted_dir_only_from_the_system_file() -> None:
    assert parse("trusted_dir = /home/b/.rustup", "sys", None, system=True, base=Settings()).trusted_dirs == (
        Path("/home/b/.rustup"),
    )
    with pytest.raises(ConfigFileError, match="honoured only in"):
        parse("trusted_dir = /home/b/.rustup", "cmdline", None, system=False, base=Settings())


def test_load_reads_system_then_given_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system = tmp_path / "system.conf"
    system.write_text("policy = warn\nsearch = /a\n")
    given = tmp_path / "given.conf"
    given.write_text("policy = select\n")
    monkeypatch.setattr(config, "SYSTEM_CONFIG", system)
    settings = load(given, None)
    assert settings.policy == "select"
    assert settings.search == (Path("/a"),)


def test_missing_system_file_is_fine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "SYSTEM_CONFIG", tmp_path / "absent")
    assert load(None, None) == Settings()


def test_missing_given_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "SYSTEM_CONFIG", tmp_path / "absent")
    with pytest.raises(ConfigFileError, match="does not exist"):
        load(tmp_path / "nope.conf", None)


def test_directory_instead_of_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "SYSTEM_CONFIG", tmp_path)
    with pytest.raises(ConfigFileError, match="not a regular file"):
        load(None, None)


@pytest.mark.skipif(os.geteuid() != 0, reason="the ownership rule applies to root")
def test_root_refuses_a_config_others_can_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system = tmp_path / "system.conf"
    system.write_text("trusted_dir = /home/mallory\n")
    os.chown(system, 1000, 1000)
    monkeypatch.setattr(config, "SYSTEM_CONFIG", system)
    with pytest.raises(ConfigFileError, match="not owned by root"):
        load(None, None)
