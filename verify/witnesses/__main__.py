from verify import witnesses
from verify.report import run

raise SystemExit(run(witnesses))
