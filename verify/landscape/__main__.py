"""``python -m verify.landscape`` (with ``--activation erf``: the erf networks' landscape, :mod:`verify.landscape_erf`)."""
import sys

from verify import landscape, landscape_erf
from verify.report import run


def _erf(argv: list) -> bool:
    for i, a in enumerate(argv):
        if a == "--activation=erf" or (a == "--activation" and argv[i + 1:i + 2] == ["erf"]):
            return True
    return False


raise SystemExit(run(landscape_erf if _erf(sys.argv[1:]) else landscape))
