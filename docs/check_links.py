"""Check that every link and every code reference in ``docs/*.md`` resolves.

Run from anywhere: ``python docs/check_links.py`` (exit status 1 if anything is broken).

* Markdown links ``[text](target)``: the file exists (relative to the page) and, for ``#anchor``,
  the target page has a heading with that GitHub-style slug.
* Backticked paths (``numerics/flows.py``, ``verify/gradient_flow/``, ``reports/training.md``):
  they exist in the repository; ``<name>`` placeholders and glob patterns are skipped.
* Backticked dotted names starting with ``theory.``, ``numerics.`` or ``verify.`` (call arguments
  dropped): the module imports and the attribute exists.
* "``name`` in ``path.py``": ``path.py`` defines ``name`` (``def``, ``class`` or an assignment).
* Bare backticked names after a dotted one in the same table cell or sentence
  (``numerics.mc.true_gradient_fd``, ``mean_field_jacobian_fd``): looked up in the same module;
  reported only as warnings, since a bare name may also be a JSON key or a word.
"""
from __future__ import annotations

import importlib
import re
import sys
import unicodedata
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\n]+)`")
PATH = re.compile(r"^(?:theory|numerics|verify|benchmarks|tests|reports|docs)(?:/[\w.\-]*)*/?$")
DOTTED = re.compile(r"^(?:theory|numerics|verify)(?:\.\w+)+")
IN_FILE = re.compile(r"`(\w+)`(?:\s*\([^)]*\))? in `([\w/.\-]+\.py)`")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|\*|\$", "", heading.strip()).lower()
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in " -":
            out.append("-")
        elif ch == "_" or cat[0] in "LN":
            out.append(ch)
    return "".join(out)


def anchors(page: Path) -> set:
    seen, out = {}, set()
    in_fence = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        if in_fence:
            continue
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            s = slug(m.group(1))
            n = seen.get(s, 0)
            seen[s] = n + 1
            out.add(s if n == 0 else f"{s}-{n}")
    return out


def resolve_dotted(name: str):
    """The object named ``a.b.c`` (longest importable module prefix, then attributes), or None."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                try:  # a submodule not imported by its package
                    obj = importlib.import_module(f"{obj.__name__}.{attr}")
                    continue
                except (ImportError, AttributeError):
                    return None
            obj = getattr(obj, attr)
        return obj
    return None


def defines(path: Path, name: str) -> bool:
    text = path.read_text(encoding="utf-8")
    return re.search(rf"^\s*(?:def|class)\s+{name}\b|^\s*{name}\s*(?::[^=]*)?=", text, re.M) is not None


def check_page(page: Path) -> tuple[list, list]:
    errors, warnings = [], []
    text = page.read_text(encoding="utf-8")
    rel = page.relative_to(ROOT)
    for lineno, line in enumerate(text.splitlines(), 1):
        where = f"{rel}:{lineno}"
        for target in LINK.findall(line):
            if re.match(r"^[a-z]+://", target) or target.startswith("mailto:"):
                continue
            file_part, _, anchor = target.partition("#")
            dest = (page.parent / file_part).resolve() if file_part else page
            if not dest.exists():
                errors.append(f"{where}: link target {target} does not exist")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                errors.append(f"{where}: no heading #{anchor} in {dest.relative_to(ROOT)}")
        for name, path in IN_FILE.findall(line):
            f = ROOT / path
            if f.exists() and not defines(f, name):
                errors.append(f"{where}: {path} does not define {name}")
        # split into cells / sentences so that a bare name is looked up in the module named just before it
        for chunk in re.split(r"\s\|\s|(?<=[.;])\s", line):
            module = None
            for code in CODE.findall(chunk.split("→")[0]):  # after an arrow: returned keys, not names
                code = code.strip()
                if "<" in code or "*" in code or "…" in code:
                    continue
                if PATH.match(code) and ("/" in code or code.endswith((".py", ".md"))):
                    if not (ROOT / code).exists():
                        errors.append(f"{where}: path {code} does not exist")
                    continue
                m = DOTTED.match(code)
                if m:
                    name = m.group(0)
                    obj = resolve_dotted(name)
                    if obj is None:
                        errors.append(f"{where}: {name} does not resolve")
                        module = None
                    else:
                        module = obj if hasattr(obj, "__file__") else importlib.import_module(obj.__module__) \
                            if hasattr(obj, "__module__") and isinstance(getattr(obj, "__module__"), str) else None
                    continue
                bare = re.match(r"^([a-z][a-z0-9]*_[a-z0-9_]*|[a-z_][a-z0-9_]*(?=\())(?:\(.*\))?$", code)
                if module is not None and bare and not hasattr(module, bare.group(1)):
                    warnings.append(f"{where}: {bare.group(1)} not in {module.__name__}")
    return errors, warnings


def main() -> int:
    errors, warnings = [], []
    for page in sorted(DOCS.glob("*.md")):
        e, w = check_page(page)
        errors += e
        warnings += w
    for w in warnings:
        print("warning:", w)
    for e in errors:
        print("error:", e)
    print(f"{len(errors)} broken reference(s), {len(warnings)} warning(s) in {len(list(DOCS.glob('*.md')))} pages")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
