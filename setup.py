"""The compiled twins of the media hot path: every kolabmeet/media/worker/_*.c (see compiled.py).

optional: without a C compiler (or Python's headers) the install goes on and the
pure-Python twins are used.
"""

from pathlib import Path

from setuptools import Extension, setup

WORKER = Path("kolabmeet/media/worker")

setup(ext_modules=[
    Extension(f"kolabmeet.media.worker.{source.stem}", [str(source)], depends=[str(h) for h in WORKER.glob("_*.h")],
              extra_compile_args=["-O2", "-Wall"], optional=True)
    for source in sorted(WORKER.glob("_*.c"))
])
