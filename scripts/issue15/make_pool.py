"""python scripts/issue15/make_pool.py styled|outliers N [OUT]: a pool as train --styled/--outliers N --seed 0 draws."""

import sys
import time

import torch

torch.set_num_threads(1)
t = time.time()
if sys.argv[1] == "styled":
    from mnist_demo.worldstyles import styled_digits

    s = styled_digits(int(sys.argv[2]), seed=0)
    out = sys.argv[3] if len(sys.argv) > 3 else "experiments/styled.pt"
    torch.save({"images": s.images, "labels": s.labels}, out)
else:
    from mnist_demo.outliers import outlier_images

    torch.save(
        outlier_images(int(sys.argv[2]), seed=0), sys.argv[3] if len(sys.argv) > 3 else "experiments/outliers.pt"
    )
print(sys.argv[1], time.time() - t, flush=True)
