"""`python -m mlx_audio_lid`: the same as the `mlx_audio_lid` command."""

import sys

from .cli import main

sys.exit(main())
