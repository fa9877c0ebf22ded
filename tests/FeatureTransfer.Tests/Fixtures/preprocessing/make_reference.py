#!/usr/bin/python3
"""Reference tensors for the preprocessing tests, made with Debian's torchvision 0.14 + PIL 9.4.

torchvision's ImageNet recipe on PIL images: pil_loader (convert("RGB")), Resize(256) (PIL bilinear with
antialias), CenterCrop(224), ToTensor, Normalize(ImageNet mean/std). For each image this stores the SHA-256 of
the uint8 crop in CHW order (PILToTensor, before normalisation), the per-channel means of the normalised tensor
and 1,000 values at seeded positions. Photos are read from ../shared at test time and never copied here.

Run from the repository root:  /usr/bin/python3 tests/FeatureTransfer.Tests/Fixtures/preprocessing/make_reference.py
"""
import hashlib, json, os, random, sys
import torch
import torchvision
from PIL import Image, ImageOps
from torchvision import transforms as T

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
HYM = os.path.join(ROOT, "..", "shared", "datasets", "hymenoptera_data")
IMAGES = [
    ("shared", "val/bees/1032546534_06907fe3b3.jpg"),
    ("shared", "val/bees/10870992_eebeeb3a12.jpg"),
    ("shared", "train/ants/ant photos.jpg"),  # progressive JPEG, name with a space
    ("shared", "val/bees/6a00d8341c630a53ef00e553d0beb18834-800wi.jpg"),  # progressive, 800x533
    ("shared", "train/ants/formica.jpeg"),
    ("shared", "train/ants/Nepenthes_rafflesiana_ant.jpg"),  # portrait 1488x1984
    ("shared", "val/ants/ants-devouring-remains-of-large-dead-insect-on-red-tile-in-Stellenbosch-South-Africa-closeup-1-DHD.jpg"),  # 2592x1944
    ("shared", "train/ants/imageNotFound.gif"),  # palette GIF
    ("repo", "samples/fashion-mnist/train/bag/" + sorted(os.listdir(os.path.join(ROOT, "samples/fashion-mnist/train/bag")))[0]),  # 28x28 gray PNG, upscaled
] + [("repo", "tests/FeatureTransfer.Tests/Fixtures/preprocessing/formats/" + f)  # made by make_format_fixtures.py
     for f in ["cmyk.jpg", "gray.jpg", "gray.png", "rgb16.png", "palette.png", "anim.gif", "img.bmp", "img.webp", "exif6.jpg", "rgba.png"]]
SAMPLES = 1000
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def load(path):
    with open(path, "rb") as f:
        img = Image.open(f)
        img = ImageOps.exif_transpose(img)  # the tool honours EXIF orientation; torchvision's loader does not
        return img.convert("RGB")


def main():
    crop = T.Compose([T.Resize(256), T.CenterCrop(224)])
    out = {"generator": f"torchvision {torchvision.__version__}, torch {torch.__version__}, PIL {Image.__version__}",
           "recipe": "Resize(256) + CenterCrop(224) + ToTensor + Normalize(ImageNet), NCHW",
           "images": []}
    for where, rel in IMAGES:
        path = os.path.join(HYM if where == "shared" else ROOT, rel)
        img = crop(load(path))
        u8 = T.PILToTensor()(img).contiguous()  # 3x224x224 uint8, CHW
        x = T.Normalize(MEAN, STD)(T.ToTensor()(img)).contiguous().view(-1)
        rng = random.Random(rel)
        idx = sorted(rng.sample(range(x.numel()), SAMPLES))
        out["images"].append({
            "source": where, "path": rel,
            "u8_chw_sha256": hashlib.sha256(u8.numpy().tobytes()).hexdigest(),
            "channel_means": [float(x.view(3, -1)[c].double().mean()) for c in range(3)],
            "indices": idx,
            "values": [float("%.7g" % float(x[i])) for i in idx],
        })
    with open(os.path.join(os.path.dirname(__file__), "torchvision_reference.json"), "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    sys.exit(main())
