"""The meeting page of the browser tests and of the dev-mode demo, and the build of its bundles.

`meet.js` drives kolabmeet as the Kolab web client does; `bundle.js` (the newest
mediasoup-client 3.x) and `bundle-legacy.js` (3.7.8, the Kolab client's locked
version) are built from npm packages by esbuild into `build/`, never committed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

PAGE_DIR = Path(__file__).parent
BUILD_DIR = PAGE_DIR / "build"
BUNDLES = {"bundle.js": "src/entry.js", "bundle-legacy.js": "src/entry-legacy.js"}
PAGE_FILES = ("index.html", "meet.js", "demo.js", *BUNDLES)


class BuildError(RuntimeError):
    """The bundles cannot be built (no Node.js or npm, or npm failed)."""


def _stale(target: Path, *sources: Path) -> bool:
    return not target.exists() or any(s.stat().st_mtime > target.stat().st_mtime for s in sources)


def _run(command: list[str]) -> None:
    done = subprocess.run(command, cwd=PAGE_DIR, capture_output=True, text=True)
    if done.returncode != 0:
        raise BuildError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")


def build() -> Path:
    """Install the npm packages (once) and bundle them where the sources are newer; the build folder."""
    npm = shutil.which("npm")
    if npm is None:
        raise BuildError("npm not found: install Node.js 18+ and npm (Debian: apt-get install nodejs npm)")
    lock = PAGE_DIR / "package-lock.json"
    installed = PAGE_DIR / "node_modules" / ".package-lock.json"
    if _stale(installed, lock, PAGE_DIR / "package.json"):
        _run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"])
    BUILD_DIR.mkdir(exist_ok=True)
    esbuild = str(PAGE_DIR / "node_modules" / ".bin" / "esbuild")
    for bundle, entry in BUNDLES.items():
        if _stale(BUILD_DIR / bundle, PAGE_DIR / entry, installed):
            _run([esbuild, entry, "--bundle", "--format=iife", "--platform=browser", "--minify",
                  f"--outfile={BUILD_DIR / bundle}", "--log-level=warning"])
    return BUILD_DIR


def page_file(name: str) -> Path | None:
    """Where a file of the page is (sources here, bundles in build/); None for other names."""
    if name not in PAGE_FILES:
        return None
    return BUILD_DIR / name if name in BUNDLES else PAGE_DIR / name
