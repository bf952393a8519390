"""mkdocs hook: the site's home page is the README, and the guides link to files outside
docs/ (benchmark results, examples) with paths that work when reading the repository.

The site copies those files in under ``repo/`` and rewrites every relative link from where
it points in the repository to where that file sits in the site. The same markdown thus
reads right in both places, and a link to a file that does not exist still fails the
strict build (mkdocs validates the rewritten link like any other)."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File, InclusionLevel

ROOT = Path(__file__).resolve().parents[2]
# repository files the documents link to, copied into the site under repo/
SHARED = ("benchmarks/results", "benchmarks/RESULTS.md", "benchmarks/peers/results.md", "examples")
_LINK = re.compile(r"\]\(([^)\s:#]+)(#[^)\s]*)?\)")  # relative links only: no scheme


def _repo_path(src_uri: str) -> str:
    """Where the site page ``src_uri`` lives in the repository."""
    if src_uri == "index.md":
        return "README.md"
    return src_uri[len("repo/"):] if src_uri.startswith("repo/") else f"docs/{src_uri}"


def _site_path(repo_path: str) -> str:
    if repo_path == "README.md":
        return "index.md"
    if repo_path.startswith("docs/"):
        return repo_path[len("docs/"):]
    if (ROOT / repo_path).is_dir():  # a folder: its README
        repo_path = posixpath.join(repo_path, "README.md")
    return f"repo/{repo_path}"


def on_files(files, config):
    files.append(File.generated(config, "index.md", content=(ROOT / "README.md").read_text(encoding="utf-8")))
    for top in SHARED:
        found = [ROOT / top] if (ROOT / top).is_file() else sorted((ROOT / top).rglob("*"))
        for path in found:
            if path.is_file() and "__pycache__" not in path.parts and not any(p.endswith(".egg-info") for p in path.parts):
                # reachable by link, deliberately not in the navigation
                files.append(File.generated(config, f"repo/{path.relative_to(ROOT).as_posix()}",
                                            abs_src_path=str(path), inclusion=InclusionLevel.NOT_IN_NAV))
    return files


def on_page_markdown(markdown, page, config, files):
    here = posixpath.dirname(_repo_path(page.file.src_uri))
    site_dir = posixpath.dirname(page.file.src_uri)

    def rewrite(match):
        target = posixpath.normpath(posixpath.join(here, match.group(1).rstrip("/")))
        if target.startswith(".."):  # outside the repository: leave it for mkdocs to judge
            return match.group(0)
        site = posixpath.relpath(_site_path(target), site_dir or ".")
        return f"]({site}{match.group(2) or ''})"

    return _LINK.sub(rewrite, markdown)
