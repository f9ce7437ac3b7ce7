from beamstream.cli import main

raise SystemExit(main())
