"""The worker process's start: its open-files limit."""

import resource
import subprocess
import sys

import pytest


def test_a_worker_raises_its_open_files_limit_to_the_hard_one() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard <= 256:
        pytest.skip(f"this machine's hard limit ({hard}) leaves nothing to raise")

    def low_start() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    code = ("import resource; from kolabmeet.media.worker.main import open_files_to_the_hard_limit as f;"
            " print(f(), *resource.getrlimit(resource.RLIMIT_NOFILE))")
    result = subprocess.run([sys.executable, "-c", code], preexec_fn=low_start, capture_output=True, text=True,
                            check=True)
    assert result.stdout.split() == [str(hard)] * 3
