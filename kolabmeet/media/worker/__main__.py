import sys

from kolabmeet.media.worker.main import main

sys.exit(main(sys.argv))
