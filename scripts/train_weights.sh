#!/usr/bin/env bash
# Retrain the three shipped models exactly as weights/README.md describes (about 10 minutes on 2 CPU cores).
# Each command writes weights/<name>.safetensors and a readable weights/<name>.json with its metrics.
set -euo pipefail
cd "$(dirname "$0")/.."

# The guide's network and hyperparameters, with only its bugs fixed.
python -m mnist_demo.train --model mlp --seed 0 --out weights/mlp-guide.safetensors
# The same family (one hidden layer) with settings that suit it: wider, lower peak rate, one-cycle, augmented.
python -m mnist_demo.train --model mlp --size 128 --epochs 5 --batch-size 128 --lr 0.002 --schedule onecycle \
  --augment --seed 0 --out weights/mlp.safetensors
# The CNN the app draws with by default.
python -m mnist_demo.train --model cnn --epochs 10 --batch-size 128 --lr 0.2 --optimizer sgd --schedule onecycle \
  --weight-decay 5e-4 --label-smoothing 0.1 --augment --seed 0 --out weights/cnn.safetensors
