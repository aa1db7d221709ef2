"""``python -m microprep`` is the ``prep`` command."""

from microprep.cli.main import main

raise SystemExit(main())
