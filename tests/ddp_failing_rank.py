"""`python -m mnist_demo.train` with a failure planted in rank 1, for tests/test_distributed.py.

torchrun runs this file in every process: rank 1's optimizer raises at its third step, after rank 0 has
started waiting for that step's gradients. The test checks that torchrun ends rank 0 and exits non-zero
naming the error, rather than leaving rank 0 waiting.

    torchrun --standalone --nproc_per_node 2 tests/ddp_failing_rank.py --model mlp --train-size 2048
"""

from __future__ import annotations

import os
import sys

from torch.distributed.elastic.multiprocessing.errors import record

from mnist_demo import train

FAIL_AT_STEP = 3


def failing_optimizer(make_optimizer):
    """`make_optimizer`, whose optimizer raises at step FAIL_AT_STEP."""

    def make(config, model):
        optimizer = make_optimizer(config, model)
        step, steps = optimizer.step, [0]

        def failing_step(*args, **kwargs):
            steps[0] += 1
            if steps[0] == FAIL_AT_STEP:
                raise RuntimeError(f"planted failure in rank 1 at step {FAIL_AT_STEP}")
            return step(*args, **kwargs)

        optimizer.step = failing_step
        return optimizer

    return make


if __name__ == "__main__":
    if os.environ.get("RANK") == "1":
        train.make_optimizer = failing_optimizer(train.make_optimizer)
    sys.exit(record(train.main)())
