"""The README's example claim runs as written and prints what the README says it prints."""

from __future__ import annotations

import re
from pathlib import Path

from trainlab.claims import REGISTRY, all_claims, run_claims

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_claim_example_runs_and_prints_its_comment(tmp_path):
    text = README.read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "@claim(" in b)
    promised = re.search(r'# -> "(.*)"', block).group(1)
    all_claims()  # the built-in claims first: the example's id must not clash with them
    claim_id = re.search(r'@claim\("([^"]+)"', block).group(1)
    assert claim_id not in REGISTRY
    try:
        exec(compile(block, str(README), "exec"), {})  # registers the example claim
        record = run_claims([claim_id], out_dir=tmp_path).results["claims"][0]
    finally:
        REGISTRY.pop(claim_id, None)
    assert record["status"] == "passed"
    # the same words and check; the residual's last digits depend on the machine's BLAS
    pattern = re.escape(promised).replace(re.escape("6.5e-16"), r"[0-9.]+e-1[0-9]")
    assert re.fullmatch(pattern, record["summary"]), record["summary"]
