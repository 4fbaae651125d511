"""Property-based tests (hypothesis) for every parser of outside input.

Two kinds of properties: what a writer writes, the parser reads back exactly (kbuild's
escaping, metadata headers, ELF sections, config lines); and whatever bytes or text arrive,
the parser answers or raises its own error, never anything else.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import struct
import subprocess
import tempfile
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

import kerneltree
import planted
from dkms_rustc import cache as cache_module
from dkms_rustc import config as config_module
from dkms_rustc import kconfig, probe, rmeta, text, versions
from dkms_rustc.elfmeta import ElfError, read_rustc_section_version
from dkms_rustc.handoff import refusal_makefile
from dkms_rustc.toolchains import CandidateKind, Found

SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
MAKE = shutil.which("make")


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="dkms-rustc-properties-"))
    yield directory
    shutil.rmtree(directory)


def _write(scratch: Path, data: bytes, name: str = "input") -> Path:
    path = scratch / name
    path.write_bytes(data)
    return path


# -- kbuild configuration --------------------------------------------------------------------

line_text = st.text(st.characters(blacklist_characters="\n", blacklist_categories=["Cs"]), max_size=80)


@given(line_text)
@example('a "quoted" back\\slash')
@example("\\")
@example('"')
@example("ends with CR\r")
@example("\x1c\x85\u2028 line separators Python's splitlines would split at")
def test_kconfig_escaping_round_trips(value: str) -> None:
    escaped = kerneltree._escape(value)  # the test trees' kbuild-style writer (confdata.c's)
    assert kconfig.unquote(escaped) == value
    text_ = f"# comment\nCONFIG_RUSTC_VERSION_TEXT={escaped}\nCONFIG_RUST=y\n"
    assert kconfig.parse_config_text(text_)["CONFIG_RUSTC_VERSION_TEXT"] == value
    crlf = text_.replace("\n", "\r\n")
    assert kconfig.parse_config_text(crlf)["CONFIG_RUSTC_VERSION_TEXT"] == value


@given(line_text.filter(lambda value: not value.endswith("\r")))
def test_auto_conf_values_are_raw(value: str) -> None:
    """include/config/auto.conf holds strings unquoted since Linux 5.17, quotes and all."""
    parsed = kconfig.parse_config_text(f"CONFIG_RUSTC_VERSION_TEXT={value}\n", escaped=False)
    assert parsed["CONFIG_RUSTC_VERSION_TEXT"] == value


@given(st.lists(st.tuples(st.sampled_from(kconfig.WANTED), line_text), max_size=12), st.data())
def test_the_last_assignment_wins_among_other_lines(
    assignments: list[tuple[str, str]], data: st.DataObject
) -> None:
    lines: list[str] = []
    for name, value in assignments:
        lines.append(data.draw(st.sampled_from(["# x", "", "CONFIG_OTHER=1", f"# {name} is not set"])))
        lines.append(f"{name}={kerneltree._escape(value)}")
    expected = dict(assignments)
    assert kconfig.parse_config_text("\n".join(lines)) == expected


@given(st.text())
def test_kconfig_text_never_raises(value: str) -> None:
    for escaped in (True, False):
        result = kconfig.parse_config_text(value, escaped=escaped)
        assert all(name.startswith("CONFIG_") for name in result)
    assert isinstance(kconfig.unquote(value), str)


@SETTINGS
@given(st.binary(max_size=2048))
def test_reading_any_config_file_raises_only_config_errors(scratch: Path, data: bytes) -> None:
    path = _write(scratch, data, ".config")
    try:
        config = kconfig.read_config(path)
    except kconfig.ConfigError:
        return
    assert isinstance(config.values, dict)
    for name in config.values:
        config.number(name)  # numbers that are not numbers are None, never an error


# -- version strings -------------------------------------------------------------------------

numbers = st.integers(min_value=0, max_value=999)
channels = st.sampled_from(["", "-nightly", "-beta.3", "-dev"])
commits = st.text("0123456789abcdef", min_size=7, max_size=40)
dates = st.dates().map(lambda day: f"{day.year:04d}-{day.month:02d}-{day.day:02d}")
suffix_text = st.text(
    st.characters(blacklist_characters="()\n", blacklist_categories=("Cs", "Cc")), max_size=30
)
suffixes = st.one_of(
    st.none(), suffix_text, st.tuples(suffix_text, suffix_text).map(lambda p: f"{p[0]}(x){p[1]}")
)


@given(numbers, numbers, numbers, channels, st.one_of(st.none(), st.tuples(commits, dates)), suffixes)
def test_rustc_versions_round_trip(
    major: int, minor: int, patch: int, channel: str, commit: tuple[str, str] | None, suffix: str | None
) -> None:
    release = f"{major}.{minor}.{patch}{channel}"
    line = f"rustc {release}"
    if commit:
        line += f" ({commit[0]} {commit[1]})"
    if suffix is not None:
        line += f" ({suffix})"
    assume(line == line.strip())
    parsed = versions.parse_rustc_version(line)
    assert parsed is not None, line
    assert (parsed.text, parsed.release, parsed.numbers) == (line, release, (major, minor, patch))
    assert (parsed.commit, parsed.date) == (commit if commit else (None, None))
    assert parsed.suffix == suffix
    assert parsed.is_official_build == (suffix is None and commit is not None)
    assert versions.kbuild_version_text(versions.kbuild_version_text(line)) == versions.kbuild_version_text(
        line
    )
    assert "#" not in versions.kbuild_version_text(line)


@given(st.text(max_size=200))
@example("rustc 1.95.0 (59807616e 2026-04-14) (((")
@example("bindgen 0.72.1\x00")
def test_version_parsers_never_raise(value: str) -> None:
    parsed = versions.parse_rustc_version(value)
    assert parsed is None or parsed.text == value.strip()
    release = versions.parse_bindgen_version(value)
    assert release is None or versions.release_numbers(release) is not None
    versions.release_numbers(value)
    versions.kbuild_version_text(value)


@given(numbers, numbers, numbers, st.text(max_size=20))
def test_bindgen_versions_round_trip(major: int, minor: int, patch: int, tail: str) -> None:
    assert versions.parse_bindgen_version(f"bindgen {major}.{minor}.{patch}") == f"{major}.{minor}.{patch}"
    parsed = versions.parse_bindgen_version(f"bindgen {major}.{minor}.{patch} {tail}")
    assert parsed in (None, f"{major}.{minor}.{patch}")


@given(st.text(max_size=500))
@example("rustc 1.95.0\nhost\nrelease:\n:::\nLLVM version: ")
def test_rustc_verbose_output_never_raises(output: str) -> None:
    found = Found(CandidateKind.RUSTC, Path("/opt/x/bin/rustc"), Path("/opt/x/bin/rustc"), ("test",))
    tool = probe._parse_verbose(found, output)
    assert tool is None or (tool.version_text or "").startswith("rustc ")


# -- crate metadata headers ------------------------------------------------------------------


version_strings = st.text(
    st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")), max_size=120
).map(lambda tail: "rustc " + tail)
version_strings = version_strings.filter(str.isprintable)


@given(st.integers(min_value=6, max_value=255), version_strings, st.binary(min_size=8, max_size=8))
def test_metadata_headers_round_trip(fmt: int, version: str, position: bytes) -> None:
    assert rmeta.version_from_header(planted.rmeta_header(fmt, version, position)) == version


@given(st.binary(max_size=600))
@example(rmeta.MAGIC + b"\x0a" + b"\xff" * 8 + b"\xff\xff\xff\xff\xff\x7f")
@example(rmeta.MAGIC + b"\x0a" + bytes(8) + b"\x05rust")
def test_any_bytes_as_metadata_raise_only_metadata_error(data: bytes) -> None:
    try:
        result = rmeta.version_from_header(data)
    except rmeta.MetadataError:
        return
    assert result.startswith("rustc ") and result.isprintable()


@given(st.data())
def test_mutated_real_headers_raise_only_metadata_error(data: st.DataObject) -> None:
    real = bytearray(
        planted.rmeta_header(10, "rustc 1.95.0 (59807616e 2026-04-14)", bytes(8)) + os.urandom(64)
    )
    for _ in range(data.draw(st.integers(min_value=1, max_value=6))):
        index = data.draw(st.integers(min_value=0, max_value=len(real) - 1))
        real[index] = data.draw(st.integers(min_value=0, max_value=255))
    cut = data.draw(st.integers(min_value=0, max_value=len(real)))
    with contextlib.suppress(rmeta.MetadataError):
        rmeta.version_from_header(bytes(real[:cut]))


@SETTINGS
@given(st.binary(max_size=700))
def test_any_rmeta_file_raises_only_metadata_or_os_errors(scratch: Path, data: bytes) -> None:
    with contextlib.suppress(rmeta.MetadataError, OSError):
        rmeta.read_rmeta_version(_write(scratch, data, "lib.rmeta"))


# -- ELF sections ----------------------------------------------------------------------------


@SETTINGS
@given(version_strings, st.booleans(), st.booleans(), st.lists(st.text("abcdefgh._", max_size=8), max_size=5))
def test_rustc_sections_round_trip(
    scratch: Path, version: str, wide: bool, little: bool, others: list[str]
) -> None:
    assume(len(planted.rustc_section(version)) - 16 <= 4096)
    sections = [(name or ".x", 1, b"data") for name in others]
    sections.insert(len(sections) // 2, (".rustc", 1, planted.rustc_section(version)))
    sections.append((".comment", 1, b"GCC: (Debian) 12\0rustc version 1.95.0 (59807616e 2026-04-14)\0"))
    path = _write(scratch, planted.build_elf(sections, wide=wide, little=little), "lib.so")
    assert read_rustc_section_version(path) == version


def _read_elf_safely(path: Path) -> None:
    try:
        version = read_rustc_section_version(path)
    except (ElfError, OSError):
        pass
    else:
        assert version.startswith("rustc ")


@SETTINGS
@given(st.binary(max_size=1024))
def test_any_bytes_as_elf_raise_only_elf_or_os_errors(scratch: Path, data: bytes) -> None:
    _read_elf_safely(_write(scratch, b"\x7fELF" + data, "lib.so"))
    _read_elf_safely(_write(scratch, data, "lib.so"))


@SETTINGS
@given(st.data())
def test_mutated_elf_raises_only_elf_or_os_errors(scratch: Path, data: st.DataObject) -> None:
    original = bytearray(
        planted.build_elf(
            [
                (".text", 1, b"\x90" * 32),
                (".rustc", 1, planted.rustc_section("rustc 1.95.0 (59807616e 2026-04-14)")),
            ],
            wide=data.draw(st.booleans()),
        )
    )
    for _ in range(data.draw(st.integers(min_value=1, max_value=8))):
        index = data.draw(st.integers(min_value=0, max_value=len(original) - 1))
        original[index] = data.draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF, data.draw(st.integers(0, 255))]))
    cut = data.draw(st.integers(min_value=len(original) // 2, max_value=len(original)))
    _read_elf_safely(_write(scratch, bytes(original[:cut]), "lib.so"))


@pytest.fixture(scope="module")
def real_proc_macro(kernel_trees: dict[str, Path]) -> bytes:
    if not kernel_trees:
        pytest.skip("no real toolchain to build a proc macro with")
    return (next(iter(kernel_trees.values())) / "rust" / "libmacros.so").read_bytes()


@settings(deadline=None, max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_real_proc_macro_raises_only_elf_or_os_errors(
    scratch: Path, real_proc_macro: bytes, data: st.DataObject
) -> None:
    """Mutations aimed at what is parsed: the ELF header, the section table, the .rustc data."""
    blob = bytearray(real_proc_macro)
    (shoff,) = struct.unpack_from("<Q", blob, 0x28)
    regions = [(0, 64), (shoff, len(blob) - shoff), (0, len(blob))]
    for _ in range(data.draw(st.integers(min_value=1, max_value=10))):
        start, size = data.draw(st.sampled_from(regions))
        index = start + data.draw(st.integers(min_value=0, max_value=max(0, size - 1)))
        blob[index] = data.draw(st.integers(min_value=0, max_value=255))
    _read_elf_safely(_write(scratch, bytes(blob), "libmacros.so"))


# -- the configuration file ------------------------------------------------------------------


@given(st.text(max_size=400), st.booleans(), st.one_of(st.none(), st.text(max_size=10)))
@example("[module x]\npolicy = fallback\nfallback_make_args = A=1 $(x)\n", True, "x")
@example("trusted_dir = /x\n", False, None)
def test_config_parser_raises_only_config_errors(value: str, system: bool, module: str | None) -> None:
    with contextlib.suppress(config_module.ConfigFileError):
        config_module.parse(value, "test.conf", module, system=system, base=config_module.Settings())


blanks = st.sampled_from(["", " ", "  ", "\t"])
directories = st.text("abcdefghijklmnopqrstuvwxyz0123456789_-.", min_size=1, max_size=12).map(
    lambda name: "/" + name
)


@given(
    blanks,
    blanks,
    blanks,
    st.sampled_from(config_module.POLICIES),
    st.lists(directories, max_size=3),
    st.booleans(),
    st.lists(st.from_regex(r"[A-Z_]{1,8}=[a-z0-9./-]{0,8}", fullmatch=True), max_size=3),
)
def test_config_lines_round_trip(
    a: str, b: str, c: str, policy: str, search: list[str], proof: bool, make_args: list[str]
) -> None:
    lines = [f"{a}policy{b}={c}{policy}{a}", f"# comment{b}", ""]
    lines += [f"search{b}= {directory}{c}" for directory in search]
    lines.append(f"proof={'yes' if proof else 'no'}")
    lines.append(f"fallback_make_args ={c}{' '.join(make_args)}")
    settings_ = config_module.parse(
        "\n".join(lines), "t.conf", None, system=False, base=config_module.Settings()
    )
    assert settings_.policy == policy
    assert settings_.search == tuple(Path(directory) for directory in search)
    assert settings_.proof is proof
    assert settings_.fallback_make_args == tuple(make_args)


# -- cache records ---------------------------------------------------------------------------


@SETTINGS
@given(st.binary(max_size=400))
def test_any_bytes_in_a_cache_record_are_ignored(scratch: Path, data: bytes) -> None:
    cache = cache_module.Cache(scratch / "cache")
    cache.put("proof", ["k"], "ok")
    (record,) = [path for path in (scratch / "cache").iterdir() if path.name.startswith("proof-")]
    record.write_bytes(data)
    assert cache.get("proof", ["k"]) in (None, "ok")
    shutil.rmtree(scratch / "cache")


# -- what is printed and handed to make ------------------------------------------------------


@given(st.text())
def test_printable_leaves_nothing_a_terminal_would_interpret(value: str) -> None:
    shown = text.printable(value)
    assert all(char == "\t" or unicodedata.category(char)[0] != "C" for char in shown)
    assert text.printable(shown) == shown
    if value.isprintable():
        assert shown == value
    shown.encode("utf-8")  # lone surrogates (undecodable file names) are escaped


make_lines = st.text(st.characters(blacklist_characters="\0"), max_size=60)


@pytest.mark.skipif(MAKE is None, reason="make is not installed")
@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(make_lines, min_size=1, max_size=4), make_lines)
@example(["ends with a backslash \\", "\\#not a comment", "  leading blanks", "$(shell touch /tmp/x)"], "$$#")
def test_the_refusal_makefile_prints_every_line_verbatim(scratch: Path, lines: list[str], last: str) -> None:
    """Whatever the messages hold, make prints them (escaped) and stops: nothing is expanded."""
    makefile = _write(scratch, refusal_makefile(lines, last).encode(), "refused.mk")
    assert MAKE is not None
    result = subprocess.run([MAKE, "-s", "-f", str(makefile)], capture_output=True, cwd=scratch, check=False)
    assert result.returncode == 2
    expected = "".join(text.printable(line.replace("\n", " ")) + "\n" for line in lines)
    assert result.stdout.decode() == expected
    assert f"*** {text.printable(last.replace(chr(10), ' '))}.  Stop." in result.stderr.decode()
