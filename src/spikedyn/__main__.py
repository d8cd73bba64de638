"""``python -m spikedyn ...`` (and ``torchrun ... -m spikedyn train ...``): the command line."""

import sys

from .cli import main

sys.exit(main())
