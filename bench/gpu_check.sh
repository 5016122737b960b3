#!/usr/bin/env bash
# On a GPU machine: the default config on full CIFAR-10, two epochs each way.
# Prints seconds per epoch for (a) the lecture's pipeline and (b) this project's trainer, and
# their ratio (bench/speed.py), then times the whole CLI run. Target: (b) <= 0.5 s per
# autoencoder epoch on an H100/H200-class GPU.
#   bash bench/gpu_check.sh [DATA]
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/datasets/cifar10-jpeg}
if [ ! -d "$data/train" ]; then  # the lent GPU machine has no copy: the sample, repeated (speed only)
  echo "no CIFAR-10 folder at $data: timing on a CIFAR-sized folder filled from the bundled sample instead"
  data=${TMPDIR:-/tmp}/cae-filled
  [ -d "$data/train" ] || python bench/fill_folder.py "$data"
fi
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device here'; print(torch.cuda.get_device_name())"
python bench/speed.py --data "$data" --images 50000 --epochs 2
python -m cae train --data "$data" --ae-epochs 2 --clf-epochs 2 --no-scratch --runs "${TMPDIR:-/tmp}/cae-gpu-runs" --force
