"""The README's promises: CI runs its test command verbatim, and the moderation example runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def _bash_blocks() -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", README, flags=re.S)]


def test_ci_runs_the_readme_test_command() -> None:
    test_command = next(b for b in _bash_blocks() if "pytest" in b)
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert test_command in ci


def test_main_command_scores_the_samples() -> None:
    main_command = _bash_blocks()[0]
    assert "python -m detector score data/samples" in main_command
    samples = list((REPO / "data" / "samples").glob("*.txt"))
    assert len(samples) >= 6


@pytest.mark.slow
def test_moderation_example_runs(smollm2_fp32, capsys: pytest.CaptureFixture[str]) -> None:
    """Executes the README's pipeline example against the shipped default bundle (model from the real cache)."""
    block = README.split("moderation-example", 1)[1]
    code = re.search(r"```python\n(.*?)```", block, flags=re.S).group(1)
    exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})
    out = capsys.readouterr().out.strip()
    flagged = r"flag for review \(P\(AI\) = (0\.\d\d\d|> 0\.999)\)"
    assert re.fullmatch(rf"({flagged}|publish \((human|uncertain|insufficient_text)\))", out), out
