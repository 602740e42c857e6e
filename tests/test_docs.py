"""The README's Python examples run, in order, as one program."""
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_examples_run(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "README has no python example"
    namespace = {"__name__": "readme"}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    out = capsys.readouterr().out
    assert "User(id=1, name='Asliddin')" in out
    assert "{'y': 2, 'z': 3}" in out
    assert "RefInfo(refcount=1, internal=0, external=1)" in out
