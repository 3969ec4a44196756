"""``verify.report.source_state``: the commit a run comes from and whether tracked files differ from it,
checked in a throw-away git repository (every case built by hand: a clean tree, a changed tracked file,
a staged one, a changed file under the run's output folder, an untracked file, no repository at all)."""
import shutil
import subprocess

import pytest

from verify.report import Context, source_state, write, Report

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(repo, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "r.json").write_text("{}\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "first")
    return tmp_path


def test_clean_tree(repo):
    assert source_state(repo, repo / "reports") == {"git_commit": _git(repo, "rev-parse", "HEAD"), "git_dirty": False}


def test_changed_tracked_file_is_dirty(repo):
    (repo / "code.py").write_text("x = 2\n")
    assert source_state(repo)["git_dirty"] is True


def test_staged_change_is_dirty(repo):
    (repo / "code.py").write_text("x = 3\n")
    _git(repo, "add", "code.py")
    assert source_state(repo)["git_dirty"] is True


def test_output_folder_changes_do_not_count(repo):
    """A run rewrites its own output folder: those files are not the code it comes from."""
    (repo / "reports" / "r.json").write_text('{"new": 1}\n')
    assert source_state(repo, repo / "reports")["git_dirty"] is False
    assert source_state(repo)["git_dirty"] is True  # without naming the folder, it is a tracked change


def test_untracked_files_do_not_count(repo):
    (repo / "scratch.txt").write_text("notes\n")
    assert source_state(repo)["git_dirty"] is False


def test_subfolder_finds_the_work_tree(repo):
    (repo / "reports" / "r.json").write_text('{"new": 1}\n')
    assert source_state(repo / "reports", repo / "reports")["git_dirty"] is False


def test_outside_git(tmp_path):
    assert source_state(tmp_path) == {"git_commit": None, "git_dirty": None}


def test_footer_says_uncommitted(tmp_path):
    """The Markdown footer names uncommitted changes when the run's state says so, and only then."""
    for dirty, expected in ((True, "commit `abc` with uncommitted changes."), (False, "commit `abc`.")):
        out = tmp_path / str(dirty)
        out.mkdir()
        ctx = Context(out=out, progress=False, source={"git_commit": "abc", "git_dirty": dirty})
        payload = write(Report(name="r", title="R"), ctx, 0.0)
        assert payload["provenance"]["git_commit"] == "abc" and payload["provenance"]["git_dirty"] is dirty
        assert expected in (out / "r.md").read_text()
