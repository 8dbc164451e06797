"""The docs: every relative link leads somewhere, and the read policy shown is the real one.

The README is one page and sends the reader on to `docs/`; a link that names a moved or
renamed file, or a heading that no longer exists, strands them. The reach proof's read policy
is printed where users copy it from (the check's error message points to the README's), so it
must be exactly what `read_policy()` returns.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from checks.reach.read import read_policy

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)
READ_POLICY_MARKER = "<!-- read-policy"


def prose(text: str) -> str:
    """The text without code: brackets in code (`[profile a]`, mermaid nodes) are no links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    headings = re.findall(
        r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", FENCE.sub("", path.read_text()), re.M
    )
    return {slug(h) for h in headings}


def relative_links(path: Path) -> list[str]:
    return [t for t in LINK.findall(prose(path.read_text())) if not SCHEME.match(t)]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_names_a_file_of_the_repository(doc: Path) -> None:
    """A relative link resolves, from the file that holds it, to a file or folder that exists
    inside the repository; a `#anchor` names a heading of its target."""
    broken = []
    for target in relative_links(doc):
        where, _, anchor = target.partition("#")
        found = (doc.parent / where).resolve() if where else doc
        if not found.exists() or ROOT not in (found, *found.parents):
            broken.append(f"{target}: no such file")
        elif anchor and found.suffix == ".md" and anchor not in anchors(found):
            broken.append(f"{target}: no heading #{anchor} in {found.relative_to(ROOT)}")
    assert not broken, f"{doc.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_readme_names_every_page_of_docs() -> None:
    """No page of docs/ is an orphan: the README links each one (or names its path, as the
    placeholder for docs/component.md does)."""
    readme = ROOT / "README.md"
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in relative_links(readme)}
    text = readme.read_text()
    orphans = [
        p.name for p in DOCS[1:] if p.resolve() not in linked and f"docs/{p.name}" not in text
    ]
    assert not orphans, f"the README names none of {orphans}"


def shown_policies(path: Path) -> list[str]:
    """Each JSON block that follows a read-policy marker."""
    parts = path.read_text().split(READ_POLICY_MARKER)[1:]
    return [part.split("```json\n", 1)[1].split("```", 1)[0] for part in parts]


@pytest.mark.parametrize("name", ["docs/check.md"])
def test_the_read_policy_shown_is_the_one_the_proof_needs(name: str) -> None:
    """docs/check.md (where the check's error message and the README send a user) shows the
    read policy exactly as `read_policy()` builds it, printed with two-space indents."""
    shown = shown_policies(ROOT / name)
    assert shown, f"{name} shows no read policy after a {READ_POLICY_MARKER} marker"
    for text in shown:
        assert json.loads(text) == read_policy(), f"{name}: the read policy differs"
        assert text == json.dumps(read_policy(), indent=2) + "\n", f"{name}: not verbatim"


def test_the_readme_shows_the_component_in_each_language() -> None:
    """The README's `## Use it from your own program` holds the Python example and points on
    to docs/component.md, whose `## Other languages` holds YAML and TypeScript
    (tests/infra/test_component_* and tests/provider/ run or check each)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Use it from your own program\n", 1)
    assert len(section) == 2, "the README lost its `## Use it from your own program` section"
    body = section[1].split("\n## ", 1)[0]
    assert "```python\n" in body and "(docs/component.md)" in body
    others = (ROOT / "docs/component.md").read_text().split("\n## Other languages\n", 1)[1]
    for language in ("yaml", "typescript"):
        assert f"```{language}\n" in others.split("\n## ", 1)[0], language
