"""The torchvision side of bench/data: ImageFolder + DataLoader with the transforms that
match `kiln augment hflip crop:2 jitter:0.4,0.4 | kiln tokenize --levels 256 | kiln batch`:
RandomHorizontalFlip(0.5), RandomCrop(size, padding=2), ColorJitter(0.4, 0.4), then pixel
tokens (uint8 values as int64, the class token first) collated into [B, 1 + H*W*C] batches.

usage: /usr/bin/python3 bench/data_torch.py DIR BATCH WORKERS  ->  prints images/s
"""
import sys
import time

import torch
from torchvision import datasets, transforms


class Tokens:
    """PIL image -> flat int64 pixel tokens (levels 256: the byte values)."""

    def __call__(self, img):
        return transforms.functional.pil_to_tensor(img).permute(1, 2, 0).reshape(-1).long()


def main():
    root, batch, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(1)
    probe = datasets.ImageFolder(root)
    w, h = probe[0][0].size
    tf = transforms.Compose([
        transforms.RandomHorizontalFlip(0.5),
        transforms.RandomCrop((h, w), padding=2),
        transforms.ColorJitter(brightness=0.4, contrast=0.4),
        Tokens(),
    ])
    base = 256 + 3  # class tokens after the 256 levels and BOS/EOS/PAD, as kiln lays them out
    ds = datasets.ImageFolder(root, transform=tf, target_transform=lambda c: c + base)
    dl = torch.utils.data.DataLoader(ds, batch_size=batch, num_workers=workers, shuffle=False)
    t0 = time.perf_counter()
    n = 0
    for x, y in dl:
        seq = torch.cat([y[:, None], x], 1)  # class token first
        xs, ys = seq[:, :-1], seq[:, 1:]  # inputs and targets, shifted by one
        n += xs.shape[0]
        assert ys.shape == xs.shape
    dt = time.perf_counter() - t0
    print(f"{n / dt:.1f}")


if __name__ == "__main__":
    main()
