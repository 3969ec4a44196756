from verify import generalizations
from verify.report import run

raise SystemExit(run(generalizations))
