"""`python -m kolabmeet.demo`: build the page's bundles (used by ./run)."""

import sys

from kolabmeet.demo import BuildError, build

try:
    print(f"demo page bundles in {build()}")
except BuildError as exc:
    print(f"kolabmeet: the demo page is not built: {exc}", file=sys.stderr)
    sys.exit(1)
