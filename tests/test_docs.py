"""The README and docs/ as a user reads them: every relative link leads to a file of the repository,
and no unfilled placeholder (an ALL_CAPS_NAME that neither the code nor the environment defines)
is left in the text."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Environment variables of the launchers the docs explain (torchrun, SLURM, LSF, CUDA), not of SPD.
EXTERNAL = {"CUDA_VISIBLE_DEVICES", "LOCAL_RANK", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT", "SLURM_PROCID",
            "WORLD_SIZE", "RANK", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_NODEID", "JSM_NAMESPACE_RANK"}
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
NAME = re.compile(r"\b[A-Z][A-Z0-9]+(?:_[A-Z0-9]+)+\b")


def _code_text() -> str:
    files = [p for folder in ("src", "scripts", "benchmarks", "configs", ".ci") for p in (ROOT / folder).rglob("*")
             if p.is_file() and p.suffix in {".py", ".sh", ".yaml", ""} and "__pycache__" not in p.parts]
    return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in files)


def test_relative_links_lead_to_files():
    broken = []
    for page in PAGES:
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, "links to nothing:\n" + "\n".join(broken)


def test_no_unfilled_placeholders():
    code = _code_text()
    unknown = sorted({f"{page.relative_to(ROOT)}: {name}" for page in PAGES
                      for name in NAME.findall(page.read_text(encoding="utf-8"))
                      if name not in EXTERNAL and name not in code})
    assert not unknown, "names that nothing defines (a placeholder left in?):\n" + "\n".join(unknown)
