from drylab.cli import main

raise SystemExit(main())
