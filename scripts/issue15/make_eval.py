import time

import numpy as np
import torch

from mnist_demo import handfonts
from mnist_demo.drawings import find_drawings, read_drawing_file
from mnist_demo.outliers import outlier_images
from mnist_demo.preprocess import sketch_to_tensor
from mnist_demo.reject import font_digits

torch.set_num_threads(1)
t = time.time()
tune = font_digits(handfonts.TUNE, 10, seed=2)
print("tune digits", len(tune), time.time() - t, flush=True)
rng = np.random.default_rng(3)
letters = []
for name in handfonts.TUNE:
    for c in handfonts.LETTERS:
        s = sketch_to_tensor(handfonts.draw(c, name, rng))
        if s is not None:
            letters.append(s.image)
letters = torch.from_numpy(np.stack(letters))
print("letters", len(letters), time.time() - t, flush=True)
val_out = outlier_images(1500, seed=99)
print("val outliers", time.time() - t, flush=True)
imgs, labs = [], []
for p, d in find_drawings("tests/drawings"):
    s = read_drawing_file(p)
    imgs.append(s.image)
    labs.append(d)
torch.save(
    {
        "tune_images": tune.images,
        "tune_labels": tune.labels,
        "letters": letters,
        "val_outliers": val_out,
        "real_images": torch.from_numpy(np.stack(imgs)),
        "real_labels": torch.tensor(labs),
    },
    "experiments/eval.pt",
)
print("done", time.time() - t)
