import sys

from exapg.cli.main import main

sys.exit(main())
