"""Every command the README and docs/ quote works as written (dry runs where it would be long),
every relative link in them resolves (file and heading), and the README stays short."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO

VENV_BIN = Path(sys.executable).parent


DOCS = [REPO / "README.md", REPO / "CHANGELOG.md", *sorted((REPO / "docs").glob("*.md"))]


def readme_commands() -> list[str]:
    """`snakemake ...` and `make ...` commands in inline code and in code blocks of every document."""
    text = "\n".join(d.read_text() for d in DOCS)
    found = re.findall(r"`((?:\.venv/bin/)?(?:snakemake|make) [^`\n]+)`", text)
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        found += [line.split("#", 1)[0].strip() for line in block.splitlines() if re.match(r"((\.venv/bin/)?snakemake|make) ", line)]
    return sorted({c for c in found if "<" not in c and "=..." not in c})  # placeholders are not commands


COMMANDS = readme_commands()


def test_the_readme_quotes_the_commands_a_reviewer_needs_and_stays_short():
    readme = (REPO / "README.md").read_text()
    for command in ("make reproduce", "make test", "make unlock", "make replay", "make quick", "make compare"):
        assert f"{command}" in readme, command
    assert len(readme.splitlines()) <= 250, "the README is an artifact appendix of at most 250 lines; the rest goes to docs/"
    assert any("--report" in c for c in COMMANDS) and any("--profile profiles/slurm" in c for c in COMMANDS)


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_relative_link_in_the_documents_resolves():
    """A broken link in the README or docs/ (a moved page, a renamed heading) fails here."""
    broken = []
    for doc in DOCS:
        text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):  # https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            dest = (doc.parent / path).resolve() if path else doc
            if not dest.exists():
                broken.append(f"{doc.name}: {target} (no such file)")
            elif anchor and dest.suffix == ".md":
                anchors = {_anchor(h) for h in re.findall(r"^#+ (.+)$", dest.read_text(), re.M)}
                if anchor not in anchors:
                    broken.append(f"{doc.name}: {target} (no heading #{anchor})")
    assert not broken, broken


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_runs_as_written(command, tmp_path, request):
    argv = shlex.split(command)
    if argv[0] == "make":  # the target exists and expands (make -n runs nothing); unlock is quick: run it
        dry = [] if argv[1:] == ["unlock"] else ["-n"]
        proc = subprocess.run(["make", *dry, *argv[1:], f"VENV={VENV_BIN.parent}"], cwd=REPO, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return
    argv[0] = str(VENV_BIN / "snakemake")  # the presets read the official release: a dry run needs no data
    cwd = REPO
    if "--report" in argv:  # after a run (the quick run's folder and config); the report goes outside the checkout
        workdir, cfg, _ = request.getfixturevalue("quick_run")
        argv[argv.index("--report") + 1] = str(tmp_path / "report.html")
        argv += ["-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--configfile", str(cfg)]
    elif "--unlock" not in argv and "-n" not in argv:
        argv.append("-n")
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{command}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"


def _quoted(prefix: str) -> list[str]:
    text = "\n".join(d.read_text() for d in DOCS)
    found = re.findall(rf"`({re.escape(prefix)} [^`\n]+)`", text)
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        found += [line.split("#", 1)[0].strip() for line in block.splitlines() if line.startswith(prefix + " ")]
    return sorted({c.strip() for c in found})


@pytest.mark.parametrize("command", _quoted(".venv/bin/dyndnn"))
def test_a_quoted_dyndnn_command_runs_or_parses(command, capsys):
    """`dyndnn summary` of a shipped record runs as written; the other subcommands need a run's
    results, so their options are checked against the parser (an option renamed in the code
    and not in the docs fails)."""
    from dyndnn.cli import main

    argv = shlex.split(command)[1:]
    if argv[0] == "summary":
        assert main(argv) == 0
        assert "Record `" in capsys.readouterr().out
        return
    with pytest.raises(SystemExit) as done:
        main([argv[0], "--help"])
    assert done.value.code == 0
    usage = capsys.readouterr().out
    for option in (a for a in argv[1:] if a.startswith("--")):
        assert option in usage, f"{command}: {argv[0]} has no option {option}"


@pytest.mark.parametrize("command", _quoted(".venv/bin/python"))
def test_a_quoted_benchmark_exists_and_takes_its_options(command):
    """Every quoted benchmark script exists and its --help names each option the docs give it."""
    argv = shlex.split(command)[1:]
    if not argv or not argv[0].startswith("benchmarks/"):
        pytest.skip(f"not a benchmark: {command}")
    proc = subprocess.run([sys.executable, argv[0], "--help"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for option in (a for a in argv[1:] if a.startswith("--")):
        assert option in proc.stdout, f"{command}: {argv[0]} has no option {option}"
