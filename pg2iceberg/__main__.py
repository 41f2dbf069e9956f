"""``python -m pg2iceberg`` is the ``pg2iceberg`` console script."""

from pg2iceberg.cli import main

raise SystemExit(main())
