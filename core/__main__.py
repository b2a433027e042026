"""`python -m simpler_build`: the same command line as `simpler-build`."""

from simpler_build.cli import main

raise SystemExit(main())
