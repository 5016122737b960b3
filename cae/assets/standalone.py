"""TITLE

The lecture's convolutional autoencoder is trained on images without labels (MSE, Adam; or, with
the contrastive objective, its encoder alone: SimCLR's NT-Xent on two random views); its encoder is
then reused with a new linear head and fine-tuned as a classifier (cross-entropy,
Adam), beside the same classifier trained from random weights. Exported by CAE Explorer; needs
only torch and torchvision (for CIFAR-10). Usage:

    python SCRIPT --data cifar10          # torchvision's CIFAR-10, downloaded into ./data
    python SCRIPT --data path/to/images   # train/<class>/* and test/<class>/* image files
"""

import argparse
import copy
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

CONFIG = {}  # <the run's settings>


def act(leak):
    return nn.ReLU() if leak == 0 else nn.LeakyReLU(leak)


class ConvAutoencoder(nn.Module):
    """(B,3,32,32) in [0,1] -> a code of latent_dim numbers -> (B,3,32,32)."""

    def __init__(self, latent_dim, leak, upsample):
        super().__init__()
        self.conv_encoder = nn.Sequential(  # 3x32x32
            nn.Conv2d(3, 64, 3, stride=2, padding=1),
            act(leak),  # 64x16x16
            nn.Conv2d(64, 128, 3, stride=2, padding=1),
            act(leak),  # 128x8x8
            nn.Conv2d(128, 128, 3, stride=2, padding=1),
            act(leak),  # 128x4x4
            nn.Conv2d(128, 128, 3, stride=1, padding=1),
            act(leak),
        )  # 128x4x4
        self.fc_encoder = nn.Sequential(nn.Linear(2048, latent_dim), act(leak))
        self.fc_decoder = nn.Sequential(nn.Linear(latent_dim, 2048), act(leak))
        if upsample == "transpose":  # the lecture's "deconvolution"
            self.conv_decoder = nn.Sequential(
                nn.Conv2d(128, 128, 3, padding=1),
                act(leak),
                nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1),
                act(leak),
                nn.ConvTranspose2d(64, 64, 4, stride=2, padding=1),
                act(leak),
                nn.ConvTranspose2d(64, 3, 4, stride=2, padding=1),
                nn.ReLU(),
            )
        else:
            extra = {"align_corners": False} if upsample == "bilinear" else {}
            up = lambda: nn.Upsample(scale_factor=2, mode=upsample, **extra)  # noqa: E731
            self.conv_decoder = nn.Sequential(
                nn.Conv2d(128, 128, 3, padding=1),
                act(leak),
                up(),  # 128x8x8
                nn.Conv2d(128, 64, 3, padding=1),
                act(leak),
                up(),  # 64x16x16
                nn.Conv2d(64, 64, 3, padding=1),
                act(leak),
                up(),  # 64x32x32
                nn.Conv2d(64, 3, 3, padding=1),
                nn.ReLU(),
            )  # 3x32x32

    def encode(self, x):
        return self.fc_encoder(self.conv_encoder(x).flatten(1))

    def forward(self, x):
        return self.conv_decoder(self.fc_decoder(self.encode(x)).view(-1, 128, 4, 4))


class Classifier(nn.Module):
    """An autoencoder's encoder (copied) and a new linear head, its weights drawn from head_seed."""

    def __init__(self, autoencoder, n_classes, head_seed):
        super().__init__()
        self.conv_encoder = copy.deepcopy(autoencoder.conv_encoder)
        self.fc_encoder = copy.deepcopy(autoencoder.fc_encoder)
        torch.manual_seed(head_seed)
        self.head = nn.Linear(self.fc_encoder[0].out_features, n_classes)

    def forward(self, x):
        return self.head(self.fc_encoder(self.conv_encoder(x).flatten(1)))


def load(source):
    """(train images, train labels, test images, test labels, class names); images uint8 (N,3,32,32)."""
    if source == "cifar10":
        import torchvision

        sets = [torchvision.datasets.CIFAR10("data", train=split, download=True) for split in (True, False)]
        tensors = [
            t
            for s in sets
            for t in (torch.from_numpy(s.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(s.targets))
        ]
        return (*tensors, sets[0].classes)
    import numpy as np
    from PIL import Image, ImageOps

    classes = sorted(d.name for d in (Path(source) / "train").iterdir() if d.is_dir())
    out = []
    for split in ("train", "test"):
        images, labels = [], []
        for label, name in enumerate(classes):
            for file in sorted(p for p in (Path(source) / split / name).iterdir() if not p.name.startswith(".")):
                try:
                    img = ImageOps.exif_transpose(Image.open(file)).convert("RGB")
                except OSError:
                    continue  # not an image
                img = img if img.size == (32, 32) else img.resize((32, 32), Image.BILINEAR)
                images.append(torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1))
                labels.append(label)
        out += [torch.stack(images), torch.tensor(labels)]
    return (*out, classes)


def clf_seed(c):
    """The classifiers' seed (labelled draw, head, batch order): clf_seed, else seed."""
    return c["seed"] if c["clf_seed"] is None else c["clf_seed"]


def balanced(labels, n, seed=0):
    """Indices of a seeded, class-balanced subset of n items (all of them when n is None)."""
    if n is None or n >= len(labels):
        return torch.arange(len(labels))
    order, classes = (
        torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed)),
        labels.unique().tolist(),
    )
    left = {c: n // len(classes) + (i < n % len(classes)) for i, c in enumerate(classes)}
    chosen = []
    for i in order.tolist():
        if left[int(labels[i])] > 0:
            left[int(labels[i])] -= 1
            chosen.append(i)
    return torch.tensor(sorted(chosen))


def make_pretext(noise, mask, augment, seed):
    """The autoencoder's (input, target) from a clean batch: random crops of the image padded by 4
    zeros (input and target), then Gaussian noise of std `noise` (clipped to 0-1) and a share `mask`
    of 4x4 patches set to 0 (input only); drawn from a generator of their own. None: input = target."""
    if not (noise or mask or augment):
        return None
    g = torch.Generator().manual_seed(seed + 7919)

    def pretext(x):
        b, _, h, w = x.shape
        if augment:
            off = torch.randint(0, 9, (2, b), generator=g).to(x.device)
            rows = off[0][:, None] + torch.arange(h, device=x.device)
            cols = off[1][:, None] + torch.arange(w, device=x.device)
            padded = F.pad(x, (4, 4, 4, 4))
            x = padded[torch.arange(b, device=x.device)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
            x = x.permute(0, 3, 1, 2).contiguous()
        inputs = (x + noise * torch.randn(x.shape, generator=g).to(x.device)).clamp(0, 1) if noise else x
        if mask:
            n = (h // 4) * (w // 4)
            hidden = torch.zeros(b, n, dtype=torch.bool)
            hidden.scatter_(1, torch.rand(b, n, generator=g).argsort(1)[:, : round(mask * n)], True)
            hidden = hidden.view(b, h // 4, w // 4).repeat_interleave(4, 1).repeat_interleave(4, 2)[:, None]
            inputs = inputs.masked_fill(hidden.to(x.device), 0.0)
        return inputs, x

    return pretext


def view(x, g):
    """One random view of each image (SimCLR's, for the contrastive objective): a crop of 20-100% of
    its area and aspect 3/4-4/3 resized back, a left-right flip with p 1/2, brightness, contrast and
    saturation each scaled by 0.6-1.4 with p 0.8, and grey with p 0.2; drawn from `g`."""
    b, u = x.shape[0], lambda lo, hi: lo + (hi - lo) * torch.rand(b, generator=g)
    area, ratio = u(0.2, 1.0), torch.exp(u(math.log(3 / 4), math.log(4 / 3)))
    width, height = (area * ratio).sqrt().clamp(max=1), (area / ratio).sqrt().clamp(max=1)
    left, top = (1 - width) * torch.rand(b, generator=g), (1 - height) * torch.rand(b, generator=g)
    flip = torch.where(torch.rand(b, generator=g) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = width * flip, height
    theta[:, 0, 2], theta[:, 1, 2] = 2 * left + width - 1, 2 * top + height - 1
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    gray = lambda v: 0.2989 * v[:, 0:1] + 0.587 * v[:, 1:2] + 0.114 * v[:, 2:3]  # noqa: E731
    brightness, contrast, saturation = [
        torch.where(torch.rand(b, generator=g) < 0.8, u(0.6, 1.4), 1.0).to(x.device).view(b, 1, 1, 1) for _ in range(3)
    ]
    x = (x * brightness).clamp(0, 1)
    mean = gray(x).mean((1, 2, 3), keepdim=True)
    x = ((x - mean) * contrast + mean).clamp(0, 1)
    x = ((x - gray(x)) * saturation + gray(x)).clamp(0, 1)
    grey = (torch.rand(b, generator=g) < 0.2).to(x.device).view(b, 1, 1, 1)
    return torch.where(grey, gray(x).expand_as(x), x)


def nt_xent(z1, z2, temperature=0.5):
    """SimCLR's loss: each of the 2B normalised projections must pick its twin among the other 2B - 1."""
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    logits = (z @ z.T / temperature).fill_diagonal_(float("-inf"))
    b = len(z1)
    return F.cross_entropy(logits, torch.cat([torch.arange(b, 2 * b), torch.arange(b)]).to(z.device))


def contrastive_epoch(autoencoder, head, optimizer, images, batch_size, generator, views, flip, precision):
    """One shuffled pass of the contrastive objective: two views per image, their projections, NT-Xent."""
    autoencoder.train(), head.train()
    total, seen, order = 0.0, 0, torch.randperm(len(images), generator=generator)
    for start in range(0, len(images), batch_size):
        idx = order[start : start + batch_size]
        x = images[idx.to(images.device)].float() / 255
        if flip:
            mask = torch.rand(len(idx), generator=generator) < 0.5
            x = torch.where(mask.to(x.device).view(-1, 1, 1, 1), x.flip(3), x)
        v1, v2 = view(x, views), view(x, views)
        with torch.autocast(x.device.type, torch.bfloat16, enabled=precision == "bf16"):
            z = head(autoencoder.encode(torch.cat([v1, v2])))
        loss = nt_xent(*z.float().chunk(2))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total, seen = total + loss.item() * len(idx), seen + len(idx)
    return total / seen


def epoch(
    model, optimizer, loss_fn, images, labels, batch_size, generator, flip, precision, max_steps=None, pretext=None
):
    """One shuffled pass (or its first max_steps batches); the mean training loss per image seen.
    With `pretext`, the model sees a corrupted input and the loss compares with the clean target."""
    model.train()
    total, seen, order = 0.0, 0, torch.randperm(len(images), generator=generator)
    for start in list(range(0, len(images), batch_size))[:max_steps]:
        idx = order[start : start + batch_size]
        x = images[idx.to(images.device)].float() / 255
        if flip:
            mask = torch.rand(len(idx), generator=generator) < 0.5
            x = torch.where(mask.to(x.device).view(-1, 1, 1, 1), x.flip(3), x)
        inputs, x = pretext(x) if pretext is not None else (x, x)
        with torch.autocast(x.device.type, torch.bfloat16, enabled=precision == "bf16"):
            out = model(inputs)
        loss = loss_fn(out.float(), x, labels[idx.to(labels.device)])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total, seen = total + loss.item() * len(idx), seen + len(idx)
    return total / seen


@torch.no_grad()
def evaluate(model, images, labels, precision, autoencoder):
    """Test MSE per pixel (autoencoder) or test accuracy in percent and per class (classifier)."""
    model.eval()
    with torch.autocast(images.device.type, torch.bfloat16, enabled=precision == "bf16"):
        outs = torch.cat([model(images[i : i + 1000].float() / 255).float() for i in range(0, len(images), 1000)])
    if autoencoder:
        return F.mse_loss(outs, images.float() / 255).item()
    right = outs.argmax(1) == labels
    return 100 * right.float().mean().item(), [100 * right[labels == c].float().mean().item() for c in labels.unique()]


def fine_tune(name, model, c, train, test, classes, precision):
    """clf_epochs epochs, or exactly clf_steps optimiser steps (then tested 4 times, the last after the last step)."""
    if c["freeze_encoder"]:
        for p in [*model.conv_encoder.parameters(), *model.fc_encoder.parameters()]:
            p.requires_grad_(False)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=c["clf_lr"])
    generator = torch.Generator().manual_seed(clf_seed(c) + 1)
    ce = lambda out, x, y: F.cross_entropy(out, y)  # noqa: E731
    batch, steps_left = c["clf_batch_size"] or c["batch_size"], c["clf_steps"]
    per_epoch = -(-len(train[0]) // batch)
    epochs = c["clf_epochs"] if steps_left is None else -(-steps_left // per_epoch)
    checks = epochs if steps_left is None else min(epochs, 4)
    tested, t0 = {round(epochs * k / checks) for k in range(1, checks + 1)}, time.perf_counter()
    for e in range(1, epochs + 1):
        loss = epoch(model, optimizer, ce, *train, batch, generator, c["flip"], precision, steps_left)
        steps_left = None if steps_left is None else steps_left - per_epoch
        if e not in tested:
            continue
        acc, per_class = evaluate(model, *test, precision, autoencoder=False)
        print(
            f"{name} epoch {e}: training loss {loss:.3f}, test accuracy {acc:.1f}% ({time.perf_counter() - t0:.1f} s)"
        )
        t0 = time.perf_counter()
    print(f"{name}, per class: " + ", ".join(f"{n} {a:.1f}%" for n, a in zip(classes, per_class)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="cifar10", help="cifar10, or an image folder with train/ and test/")
    parser.add_argument(
        "--precision", choices=("fp32", "bf16"), default="bf16" if CONFIG["precision"] == "bf16" else "fp32"
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args, c = parser.parse_args(), CONFIG
    device = torch.device(args.device)
    x_train, y_train, x_test, y_test, classes = load(args.data)
    train_idx, test_idx = balanced(y_train, c["limit"]), balanced(y_test, c["test_limit"])
    x_train, y_train = x_train[train_idx].to(device), y_train[train_idx].to(device)
    x_test, y_test = x_test[test_idx].to(device), y_test[test_idx].to(device)
    print(f"{len(x_train):,} training and {len(x_test):,} test images, {len(classes)} classes, on {device}")

    torch.manual_seed(c["seed"])  # the same initial weights as the app's run with this seed
    autoencoder = ConvAutoencoder(c["latent_dim"], c["leak"], c["upsample"]).to(device)
    initial = copy.deepcopy(autoencoder)  # the scratch baseline starts from these weights
    if c["scratch_seed"] is not None:  # ... or from other random weights
        torch.manual_seed(c["scratch_seed"])
        initial = ConvAutoencoder(c["latent_dim"], c["leak"], c["upsample"]).to(device)
    optimizer, generator = (
        torch.optim.Adam(autoencoder.parameters(), lr=c["lr"]),
        torch.Generator().manual_seed(c["seed"]),
    )
    mse = lambda out, x, y: F.mse_loss(out, x)  # noqa: E731
    pretext = make_pretext(c["noise"], c["mask"], c["augment"], c["seed"])
    if c.get("objective") == "contrastive":  # the encoder alone, with a projection head thrown away after
        torch.manual_seed(c["seed"] + 15_485_863)
        head = nn.Sequential(nn.Linear(c["latent_dim"], 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, 128))
        head = head.to(device)
        encoder = [*autoencoder.conv_encoder.parameters(), *autoencoder.fc_encoder.parameters()]
        optimizer = torch.optim.Adam(encoder + list(head.parameters()), lr=c["lr"])
        views = torch.Generator().manual_seed(c["seed"] + 104_729)
    for e in range(1, c["ae_epochs"] + 1 if c.get("objective") == "contrastive" else 1):
        t0 = time.perf_counter()
        loss = contrastive_epoch(
            autoencoder, head, optimizer, x_train, c["batch_size"], generator, views, c["flip"], args.precision
        )
        print(f"Contrastive epoch {e}: NT-Xent {loss:.3f} ({time.perf_counter() - t0:.1f} s)")
    for e in range(1, c["ae_epochs"] + 1 if c.get("objective") != "contrastive" else 1):
        t0 = time.perf_counter()
        train_mse = epoch(
            autoencoder,
            optimizer,
            mse,
            x_train,
            y_train,
            c["batch_size"],
            generator,
            c["flip"],
            args.precision,
            pretext=pretext,
        )
        test_mse = evaluate(autoencoder, x_test, y_test, args.precision, autoencoder=True)
        print(
            f"Autoencoder epoch {e}: train MSE {train_mse:.4f}, test MSE {test_mse:.4f} "
            f"({time.perf_counter() - t0:.1f} s)"
        )

    wanted = c["label_count"] if c["label_count"] is not None else round(c["label_fraction"] * len(y_train))
    n_labelled = min(len(y_train), max(len(classes), wanted))  # class-balanced, drawn with clf_seed
    labelled = balanced(y_train.cpu(), n_labelled, seed=c["clf_seed"] or 0).to(device)
    train = (x_train[labelled], y_train[labelled])
    print(f"{n_labelled:,} labelled images for the classifiers")
    if c["clf_epochs"] or c["clf_steps"]:
        fine_tune(
            "Fine-tuning",
            Classifier(autoencoder, len(classes), clf_seed(c) + 1).to(device),
            c,
            train,
            (x_test, y_test),
            classes,
            args.precision,
        )
    if (c["clf_epochs"] or c["clf_steps"]) and c["scratch_baseline"]:
        fine_tune(
            "Scratch",
            Classifier(initial, len(classes), clf_seed(c) + 1).to(device),
            c,
            train,
            (x_test, y_test),
            classes,
            args.precision,
        )


if __name__ == "__main__":
    main()
