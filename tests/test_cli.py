"""The `kolabmeet` command's process set-up."""

from __future__ import annotations

import subprocess
import sys

from kolabmeet.cli import YOUNG_COLLECTION_THRESHOLD


def test_the_serving_process_freezes_what_startup_made_and_collects_less_often() -> None:
    script = ("import gc; from kolabmeet.cli import collect_less; before = gc.get_threshold(); collect_less(); "
              "print(gc.get_freeze_count() > 1000, gc.get_threshold()[0], gc.get_threshold()[1:] == before[1:])")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", str(YOUNG_COLLECTION_THRESHOLD), "True"]
