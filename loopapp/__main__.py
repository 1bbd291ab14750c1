"""`python -m loopapp` is the `loop` command (the systemd unit runs it this way)."""

from loopapp.cli import main

raise SystemExit(main())
