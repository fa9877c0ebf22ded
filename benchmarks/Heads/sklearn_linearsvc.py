#!/usr/bin/python3
"""scikit-learn LinearSVC on the exact normalized matrices the C# head saw (.npy + .meta.json written by FeatureFiles).
Usage: sklearn_linearsvc.py train.npy test.npy [C]  -> one JSON line: fit_s, predict_s, accuracy."""
import json, sys, time
import numpy as np
from sklearn.svm import LinearSVC

def load(path):
    x = np.load(path)
    meta = json.load(open(path + ".meta.json"))
    return x, np.array(meta["labels"])

xtr, ytr = load(sys.argv[1])
xte, yte = load(sys.argv[2])
c = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
t0 = time.perf_counter()
clf = LinearSVC(C=c, dual=xtr.shape[0] < xtr.shape[1], max_iter=2000).fit(xtr, ytr)
t1 = time.perf_counter()
pred = clf.predict(xte)
t2 = time.perf_counter()
print(json.dumps({"fit_s": t1 - t0, "predict_s": t2 - t1, "accuracy": float((pred == yte).mean()),
                  "rows": int(xtr.shape[0]), "dims": int(xtr.shape[1]), "C": c}))
