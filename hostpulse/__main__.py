import sys

from hostpulse.cli import main

sys.exit(main())
