"""`python -m nextword ...` is the `nextword` command (torchrun -m nextword train ... as well)."""
import sys

from nextword.cli import main

sys.exit(main())
