import sys
import time

import torch

torch.set_num_threads(1)
t = time.time()
if sys.argv[1] == "styled":
    from mnist_demo.worldstyles import styled_digits

    s = styled_digits(int(sys.argv[2]), seed=0)
    torch.save({"images": s.images, "labels": s.labels}, "experiments/styled.pt")
else:
    from mnist_demo.outliers import outlier_images

    torch.save(outlier_images(int(sys.argv[2]), seed=0), "experiments/outliers.pt")
print(sys.argv[1], time.time() - t, flush=True)
