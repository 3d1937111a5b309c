"""The compiled twins of the media hot path (see kolabmeet/media/worker/send.py).

optional: without a C compiler (or Python's headers) the install goes on and the
pure-Python twins are used.
"""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("kolabmeet.media.worker._send", ["kolabmeet/media/worker/_send.c"],
              extra_compile_args=["-O2", "-Wall"], optional=True),
])
