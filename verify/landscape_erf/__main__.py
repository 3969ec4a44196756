"""``python -m verify.landscape_erf``."""
from verify.landscape_erf import main

raise SystemExit(main())
