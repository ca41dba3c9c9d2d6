import sys

from report_client.cli import main

sys.exit(main())
