"""The README's quick start is: ``uv run smslane up --demo``, then the curl it prints."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from smslane import up

README = Path(__file__).resolve().parents[2] / "README.md"


def curl_shape(command: str) -> tuple[list[str], list[str], list[str]]:
    """(method and flags, header names, body keys) of a printed or documented curl."""
    words = shlex.split(command.replace("\\\n", " "))
    headers = [words[i + 1].split(":")[0] for i, w in enumerate(words) if w == "-H"]
    body = words[words.index("-d") + 1]
    return words[:4], headers, re.findall(r'"(\w+)":', body)


def test_quick_start_is_install_up_demo_and_the_printed_curl(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = README.read_text()
    section = text[text.index("## Quick start") :]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block is not None
    commands = [
        line for line in block.group(1).replace("\\\n", " ").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]  # fmt: skip
    assert len(commands) == 2, commands
    assert commands[0] == "uv run smslane up --demo"
    up._print_welcome("http://127.0.0.1:8000", "dev_key", "admin_key", "uc", Path("var"), "off")
    printed = capsys.readouterr().out
    start = printed.index("curl -s -X POST")
    assert curl_shape(commands[1]) == curl_shape(printed[start : printed.index("\n\n", start)])
