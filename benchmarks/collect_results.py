"""Assemble benchmarks/RESULTS.md from the per-area reports in benchmarks/results/*.md.

Each benchmark script writes its own report (figures, command, machine, date); this keeps
one file to read without anyone editing another area's figures by hand.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["issue26", "distill", "throughput_int8_avx2", "export_int8_default", "openvino_gap", "tokens", "explain", "pii", "sequential", "finetune", "hardening_issue21_ab", "bounded_input", "attack_compare", "refactor_issue20", "refactor_issue20_rerun", "refactor", "encode", "gemm_paths", "cache", "memory", "models", "honest", "independent_als", "export", "throughput", "throughput_int8", "serve", "ann", "ray", "accuracy", "gpu"]

# a report's relative link (a plot, a sibling report) points into results/; RESULTS.md sits
# one folder up, so the link gains that folder (links with a scheme or an anchor only stay)
_RELATIVE_LINK = re.compile(r"\]\((?![a-z][a-z0-9+.-]*:|#|/)([^)\s]+)\)")

HEADER = """# Measured results

Every figure below was produced by a script in `benchmarks/`; each section gives the exact
command, the machine and the date. Speeds are ratios measured side by side in one process,
medians over repeats. The machines are shared 2-core AMD EPYC VMs, 24 GiB, and the CPU
varies between machines of this kind: most earlier sections ran on AVX-512 bf16 + VNNI (no
AMX; some also avx_vnni, which runs some kernels twice as fast), the issue-26 sections on an
AVX2-only EPYC (no AVX-512, VNNI, bf16 or AMX). Each section names its CPU: compare figures
within one section's run, never across sections or dates. Rows that use random-weight model shapes say so. Regenerate this file with
`python benchmarks/collect_results.py`.

"""


def main() -> int:
    parts = sorted((HERE / "results").glob("*.md"))
    rank = {name: i for i, name in enumerate(ORDER)}
    parts.sort(key=lambda p: (rank.get(p.stem, len(ORDER)), p.stem))
    body = [HEADER]
    for part in parts:
        text = part.read_text(encoding="utf-8").strip()
        # demote the part's headings one level so RESULTS.md has a single title
        lines = [("#" + ln) if ln.startswith("#") else ln for ln in text.splitlines()]
        lines = [_RELATIVE_LINK.sub(r"](results/\1)", ln) for ln in lines]
        body.append("\n".join(lines) + f"\n\n_Source: `benchmarks/results/{part.name}`_\n")
    out = HERE / "RESULTS.md"
    tmp = out.with_suffix(".md.tmp")
    tmp.write_text("\n".join(body), encoding="utf-8")
    tmp.replace(out)
    print(f"wrote {out} from {len(parts)} reports")
    return 0


if __name__ == "__main__":
    sys.exit(main())
