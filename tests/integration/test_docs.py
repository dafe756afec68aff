"""The README is the user's only manual: every setting sauve knows must be
documented there, and every command it accepts."""

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def sauve_help():
    out = subprocess.run([os.environ["SAUVE_BIN"], "help"], capture_output=True, text=True, check=True)
    return out.stdout


def test_every_setting_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    names = re.findall(r"^  ((?:SAUVE|PG)[A-Z_]+) ", sauve_help(), re.M)
    assert len(names) >= 10, "help lists the settings"
    missing = [n for n in names if f"`{n}`" not in readme]
    assert not missing, f"settings missing from README.md: {missing}"


def test_every_command_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^  ([a-z]+)\b", sauve_help(), re.M)
    assert set(commands) >= {"backup", "restore", "list", "verify", "drill", "prune", "check"}
    for c in commands:
        assert f"sauve {c}" in readme, c
