#!/usr/bin/env bash
# The runs behind pretrained/ and docs/RESULTS.md, on the full JPEG copy of CIFAR-10.
# Each is an ordinary `python -m cae train`; runs that exist are found again, and variants
# reuse the matching autoencoder.
#   bash bench/train_pretrained.sh RUNS_DIR [DATA]
set -euo pipefail
runs=${1:-runs}; data=${2:-../shared/datasets/cifar10-jpeg}
train() { python -m cae train --data "$data" --runs "$runs" "$@"; }
train                                   # the lecture preset, seed 0
train --seed 1; train --seed 2          # the spread over seeds
train --label-fraction 0.1              # 10% of labels, same autoencoder
train --clf-lr 5e-4; train --clf-lr 2e-3                        # what moves fine-tuning
train --ae-epochs 30 --clf-epochs 30                            # the long run
train --ae-epochs 30 --clf-epochs 30 --flip                     # the long run with flips
train --clf-lr 3e-3; train --lr 2e-3                            # more of what moves it
