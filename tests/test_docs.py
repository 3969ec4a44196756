"""The documentation stands on its own: every link, path and API name in ``docs/`` resolves, and
no file of the repository points to notes outside it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_docs_links_paths_and_api_names_resolve():
    done = subprocess.run([sys.executable, str(ROOT / "docs" / "check_links.py")], capture_output=True, text=True,
                          cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_reference_to_notes_outside_the_repository():
    # the background notes once cited by name are not part of this repository; docs/ replaces them
    banned = ("THEORY" + ".md", "PAPER" + "_EXPERIMENTS", "../" + "shared", "the " + "issue's", "(" + "brief)")
    hits = []
    for path in ROOT.rglob("*"):
        if (path.suffix not in (".py", ".md") or any(p in path.parts for p in (".git", ".hypothesis"))
                or path.is_relative_to(ROOT / "reports")):  # reports: checked once regenerated, below
            continue
        text = path.read_text(errors="replace")
        hits += [f"{path.relative_to(ROOT)}: {b}" for b in banned if b in text]
    assert not hits, hits


def test_generated_reports_name_no_outside_notes(quick_reports):
    hits = [p.name for p in quick_reports.glob("*.md") if "THEORY" + ".md" in p.read_text()]
    assert not hits, hits


def test_every_test_named_in_the_guarantees_exists():
    """Each line of the README's Guarantees is backed by the tests it names: they must exist."""
    import re

    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Guarantees", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`(test_\w+)`", section))
    files = set(re.findall(r"`(tests/test_\w+\.py)`", section))
    assert named, "the Guarantees section names no test"
    defined = set()
    for path in (ROOT / "tests").glob("test_*.py"):
        defined |= set(re.findall(r"^def (test_\w+)", path.read_text(), flags=re.M))
    assert named <= defined, sorted(named - defined)
    assert all((ROOT / f).is_file() for f in files), files
