"""`python -m resolver`."""

import sys

from resolver.cli import main

if __name__ == "__main__":  # not when a Dask worker process re-imports it
    sys.exit(main())
