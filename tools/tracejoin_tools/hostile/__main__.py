import sys

from tracejoin_tools.hostile.report import main

sys.exit(main())
