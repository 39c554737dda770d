from companion_ws.cli import main

raise SystemExit(main())
