"""Experiments that rerun the papers' comparisons: ``python -m tinysegnet.experiments NAME ...``.

- ``decoders``: the SegNet paper's Table 1, SegNet-Basic against bilinear and FCN decoders.
- ``bayesian``: Bayesian SegNet's claims, Monte Carlo dropout against SegNet-Basic.
- ``choices``: median-frequency class weights and recomputed batch-norm statistics, measured.
- ``lcn``: local contrast normalisation against standardisation, on two runs of one protocol.
- ``segnet``: the paper's SegNet (VGG16) against SegNet-Basic, on runs of one protocol.
"""

import sys

from . import bayesian, choices, decoders, lcn, segnet

EXPERIMENTS = {"decoders": decoders.main, "bayesian": bayesian.main, "choices": choices.main, "lcn": lcn.main,
               "segnet": segnet.main}
USAGE = ("usage: python -m tinysegnet.experiments {decoders,bayesian,choices,lcn,segnet} [--data-dir DIR ...] "
         "(--help after the name for its options)")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr if not argv else sys.stdout)
        sys.exit(2 if not argv else 0)
    if argv[0] not in EXPERIMENTS:
        print(f"python -m tinysegnet.experiments: no experiment {argv[0]!r}: choose one of "
              f"{', '.join(EXPERIMENTS)} (--help after the name for its options)", file=sys.stderr)
        sys.exit(2)
    EXPERIMENTS[argv[0]](argv[1:])
