#!/usr/bin/python3
"""Learning-curve diagnosis with scikit-learn's LinearSVC on features exported by `ft extract` (Debian python3-sklearn).
Separates head/normalization effects from the backbone: same features, liblinear head, several normalizations,
several random samples of N images per class, tested on every row of the test file.

  ft extract --data idx:/usr/share/datasets/fashion-mnist --classes sandal,shirt,sneaker,bag,ankle-boot \
    --layers relu4,relu9,relu15,relu20,relu26,fc30 --out train_all.npy
  ft extract --data idx:/usr/share/datasets/fashion-mnist:t10k --classes sandal,shirt,sneaker,bag,ankle-boot \
    --layers relu4,relu9,relu15,relu20,relu26,fc30 --out test_all.npy
  curve_sklearn.py train_all.npy test_all.npy 10,50,100,1000 0.01,0.1,1

Raw pixels are read from the idx files (ids of `idx:` rows are the image indices). Prints one line per configuration:
mean and std over the samples (seeds 1-5; 1-2 at N >= 1000) of the test accuracy."""
import gzip, json, sys
import numpy as np
from sklearn.svm import LinearSVC

IDX = "/usr/share/datasets/fashion-mnist"

def load(path):
    x = np.load(path)
    m = json.load(open(path + ".meta.json"))
    return x, np.array(m["labels"]), np.array([int(i) for i in m["ids"]]), m["provenance"]["layout"]["taps"], m["provenance"]["dataset"]

def pixels(split):
    with gzip.open(f"{IDX}/{split}-images-idx3-ubyte.gz") as f:
        return np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784).astype(np.float32) / 255

def normalize(a, b, recipe, slices):
    """Fitted on a (train), applied to b: none, standardize, fne (standardize + {-1,0,1} at -0.25/0.15), l2+fne."""
    if recipe == "none":
        return a, b
    if recipe == "l2+fne":
        a, b = a.copy(), b.copy()
        for s in slices:
            for m in (a, b):
                n = np.linalg.norm(m[:, s], axis=1, keepdims=True)
                m[:, s] /= np.where(n == 0, 1, n)
    mu, sd = a.mean(0), a.std(0)
    inv = np.where(sd > 0, 1 / np.where(sd > 0, sd, 1), 0)
    za, zb = (a - mu) * inv, (b - mu) * inv
    if recipe == "standardize":
        return za, zb
    disc = lambda z: np.where(z < -0.25, -1, np.where(z > 0.15, 1, 0)).astype(np.float32)
    return disc(za), disc(zb)

xtr, ytr, idtr, taps, _ = load(sys.argv[1])
xte, yte, idte, _, _ = load(sys.argv[2])
sizes = [int(n) for n in sys.argv[3].split(",")] if len(sys.argv) > 3 else [10, 50, 100, 1000]
cs = [float(c) for c in sys.argv[4].split(",")] if len(sys.argv) > 4 else [0.01, 0.1, 1.0]
ptr, pte = pixels("train")[idtr], pixels("t10k")[idte]
span = {t["tensor"]: slice(t["offset"], t["offset"] + t["length"]) for t in taps}
convs = [t["tensor"] for t in taps if t["kind"] == "map"]
last = convs[-1]
configs = [("FNE (conv taps)", convs, "standardize"), ("FNE (conv taps)", convs, "fne"), ("FNE (conv taps)", convs, "l2+fne"),
           ("all taps (+ FC)", list(span), "standardize"), ("bottleneck (last conv, GAP)", [last], "none"),
           ("bottleneck (last conv, GAP)", [last], "standardize"), ("bottleneck (last conv, GAP)", [last], "fne"),
           ("raw pixels /255", None, "none"), ("raw pixels /255", None, "standardize")]
classes = sorted(set(ytr))
for n in sizes:
    seeds = [1, 2] if n >= 1000 else [1, 2, 3, 4, 5]
    for name, layers, recipe in configs:
        for c in cs:
            accs = []
            for seed in seeds:
                r = np.random.RandomState(seed)
                rows = np.concatenate([r.choice(np.where(ytr == k)[0], n, replace=False) for k in classes])
                if layers is None:
                    a, b, slices = ptr[rows], pte, []
                else:
                    cols = np.concatenate([np.arange(xtr.shape[1])[span[l]] for l in layers])
                    a, b = xtr[rows][:, cols], xte[:, cols]
                    starts = np.cumsum([0] + [span[l].stop - span[l].start for l in layers])
                    slices = [slice(starts[i], starts[i + 1]) for i in range(len(layers))]
                a, b = normalize(a, b, recipe, slices)
                clf = LinearSVC(C=c, max_iter=5000).fit(a, ytr[rows])
                accs.append(float((clf.predict(b) == yte).mean()))
            print(f"N={n} {name} + {recipe} C={c:g}: mean {np.mean(accs):.4f} std {np.std(accs):.4f} {['%.3f' % x for x in accs]}", flush=True)
