"""A fresh clone needs two commands, and CI runs the ones the documentation shows.

README.md's test command is the one ``.ci/run`` runs, word for word; the lint commands of
``.ci/run`` are those of the pre-commit hooks; ``uv.lock`` pins every dependency.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CI_RUN = ROOT / ".ci" / "run"


def fenced_block_after(markdown: str, heading: str) -> list[str]:
    """The lines of the first fenced code block under ``heading``."""
    section = markdown.split(f"\n{heading}\n", 1)[1]
    block = re.search(r"^```[a-z]*\n(.*?)^```", section, re.DOTALL | re.MULTILINE)
    assert block, f"no code block under {heading}"
    return block.group(1).splitlines()


def ci_test_command() -> str:
    """The command of .ci/run's test step: the line whose status it exits with."""
    lines = [line.strip() for line in CI_RUN.read_text().splitlines()]
    return lines[lines.index("status=$?") - 1]


def ci_lint_commands() -> list[str]:
    """The commands of .ci/run's lint step, without the ``uv run --extra dev`` prefix."""
    text = CI_RUN.read_text()
    step = text.split('step "Lint', 1)[1].split("\nstep ", 1)[0]
    prefix = "uv run --extra dev "
    return [line.removeprefix(prefix) for line in step.splitlines()[1:] if line.strip()]


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    command = fenced_block_after(readme, "## Run the tests")[0]
    assert command == "uv run --extra dev python -m pytest"
    assert ci_test_command() == command


def test_contributing_shows_the_same_test_command() -> None:
    contributing = (ROOT / "CONTRIBUTING.md").read_text()
    assert fenced_block_after(contributing, "## Running the tests")[0] == ci_test_command()


def test_the_readme_starts_the_demo_with_uv() -> None:
    readme = (ROOT / "README.md").read_text()
    assert fenced_block_after(readme, "## Quick start")[0] == "uv run smslane up --demo"


def test_pre_commit_runs_the_lint_commands_of_ci() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    entries = [
        hook["entry"].removeprefix("uv run --extra dev ")
        for repo in config["repos"]
        for hook in repo["hooks"]
    ]
    assert entries == ci_lint_commands()
    assert all(h.get("pass_filenames") is False for r in config["repos"] for h in r["hooks"])


def test_the_lockfile_pins_every_dependency_of_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    locked = {package["name"] for package in lock["package"]}
    wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    names = {re.split(r"[\[<>=!~; ]", spec, maxsplit=1)[0].lower() for spec in wanted}
    names = {name.replace("_", "-") for name in names}
    assert names <= locked, sorted(names - locked)
    smslane = next(p for p in lock["package"] if p["name"] == "smslane")
    assert smslane["source"] == {"editable": "."}
