"""The README's example runs as written, so what a newcomer copies works."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_example_drives_a_request_through_the_services(tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    example = example.replace("/tmp/claqueta-demo", str(tmp_path / "datos"))
    script = tmp_path / "ejemplo.py"
    script.write_text(example, encoding="utf-8")
    result = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("PRE-06 ['Rosa Quispe Huamán completó PRE-01")
    assert list((tmp_path / "datos" / "correos").glob("*.eml"))


def test_readme_shows_the_flowchart_generated_from_the_definition():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    chart = re.search(r"```mermaid\n(.*?)```", readme, re.S).group(1)
    generated = subprocess.run([sys.executable, "-m", "procedure", "flowchart", "--format", "mermaid"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout
    assert chart.strip() == generated.strip()
