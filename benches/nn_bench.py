"""Backbone throughput: radpipe-nn (tch) against PyTorch eager on the same
libtorch (torch 2.11.0), threads, shapes and precision, in one run.

    make bench-nn                  # CPU, 2 threads, ResNet-101 at 224x224
    python benches/nn_bench.py --worker target/debug/radpipe-nn --device cuda --precision fp16-autocast

Inference: features and logits of a batch, no gradients. Training: forward,
focal loss, backward and one SGD step (momentum, weight decay), batch-norm in
training mode: one epoch's work per batch. Prints one JSON object per
measurement and a Markdown table of ratios (radpipe-nn / PyTorch).
"""
import argparse
import json
import subprocess
import time

import torch
import torchvision


def focal(logits, targets, alpha=0.5, gamma=2.0):
    log_pt = torch.log_softmax(logits.float(), dim=-1).gather(1, targets[:, None])[:, 0]
    alpha_t = torch.where(targets == 1, alpha, 1 - alpha)
    return (-alpha_t * (1 - log_pt.exp()) ** gamma * log_pt).mean()


def torch_throughput(arch, size, batch, iters, device, train, precision):
    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(weights=None, num_classes=2).to(device)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    model = model.to(dtype)
    x = torch.randn(batch, 3, size, size, device=device, dtype=dtype)
    y = (torch.arange(batch, device=device) % 2).long()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    autocast = precision == "fp16-autocast" and device.startswith("cuda")
    feats = {}
    model.layer4.register_forward_hook(lambda m, i, o: feats.__setitem__("a", o))

    def step():
        if train:
            model.train()
            with torch.autocast("cuda", dtype=torch.float16, enabled=autocast):
                logits = model(x)
            loss = focal(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        else:
            model.eval()
            with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16, enabled=autocast):
                model(x)
                float(feats["a"].mean(dim=(2, 3)).float().sum())

    for _ in range(2):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(iters):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    s = time.perf_counter() - t
    return {"tool": "pytorch", "arch": arch, "size": size, "batch": batch, "iters": iters, "device": device, "threads": torch.get_num_threads(),
            "mode": "train" if train else "infer", "precision": precision, "seconds": s, "images_per_s": batch * iters / s}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", required=True)
    ap.add_argument("--arch", default="resnet101")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="fp32", help="fp32, fp16-autocast, bf16 (comma-separated for several)")
    ap.add_argument("--repeats", type=int, default=2, help="alternating repeats; the best of each is kept")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for precision in args.precision.split(","):
        for train in (False, True):
            best = {}
            for _ in range(args.repeats):
                cmd = [args.worker, "bench", "--arch", args.arch, "--size", str(args.size), "--batch", str(args.batch), "--iters", str(args.iters),
                       "--device", args.device, "--threads", str(args.threads), "--precision", precision] + (["--train"] if train else [])
                ours = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
                theirs = torch_throughput(args.arch, args.size, args.batch, args.iters, args.device, train, precision)
                for r in (ours, theirs):
                    print(json.dumps(r), flush=True)
                    if r["images_per_s"] > best.get(r["tool"], {"images_per_s": 0})["images_per_s"]:
                        best[r["tool"]] = r
            rows.append((precision, "train" if train else "infer", best["radpipe-nn"]["images_per_s"], best["pytorch"]["images_per_s"]))
    print(f"\n{args.arch} {args.size}x{args.size}, batch {args.batch}, {args.device}, {args.threads} threads, torch {torch.__version__}")
    print("| precision | mode | radpipe-nn images/s | PyTorch eager images/s | ratio |")
    print("|---|---|---|---|---|")
    for p, mode, a, b in rows:
        print(f"| {p} | {mode} | {a:.2f} | {b:.2f} | {a / b:.3f} |")


if __name__ == "__main__":
    main()
