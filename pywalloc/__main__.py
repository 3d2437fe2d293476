"""``python -m pywalloc``: the ``walloc`` command."""

from .cli import main

raise SystemExit(main())
