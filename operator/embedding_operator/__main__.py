from embedding_operator.cli import main

raise SystemExit(main())
