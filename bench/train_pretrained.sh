#!/usr/bin/env bash
# The runs behind pretrained/ and docs/RESULTS.md, on the full JPEG copy of CIFAR-10, as they were
# made for the first release. Each is an ordinary `python -m cae train`; runs that exist are found
# again, and variants reuse the matching autoencoder. The lecture preset ran with 2 threads; the
# others with OMP_NUM_THREADS=1, two at a time (their seconds per epoch are single-thread times).
#   bash bench/train_pretrained.sh RUNS_DIR [DATA]
set -euo pipefail
runs=${1:-runs}; data=${2:-../shared/datasets/cifar10-jpeg}
train() { python -m cae train --data "$data" --runs "$runs" "$@"; }
train                                                   # the lecture preset, seed 0 (shipped, default)
train --seed 1; train --seed 2                          # the spread over seeds
train --label-fraction 0.1                              # 10% of the labels, same autoencoder
train --clf-lr 5e-4; train --clf-lr 2e-3                # what moves fine-tuning (2e-3 shipped)
train --clf-lr 2e-3 --seed 1; train --clf-lr 2e-3 --seed 2
train --ae-epochs 30 --clf-epochs 30                    # the long run (shipped)
train --ae-epochs 30 --clf-epochs 30 --flip --no-scratch   # the long run with horizontal flips
