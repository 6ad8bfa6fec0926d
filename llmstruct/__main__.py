"""``python -m llmstruct``: the same as the ``llmstruct`` command."""

import sys

from llmstruct.cli import main

sys.exit(main())
