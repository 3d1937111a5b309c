import sys

from kolabmeet.cli import main

sys.exit(main())
