"""PyTorch side of `scripts/bench train`: catgan's DCGAN training step, timed on random data.

One step is what `catgan bench --arch dcgan` times: one generator pass, a discriminator update on
real and detached fake images, a generator update through the freshly updated discriminator, and
an EMA update of the generator. Prints one JSON line (images/s over the timed steps).
"""

import argparse
import json
import os
import resource
import sys
import time

import torch
from torch import nn
from torch.nn import functional as F

LATENT = 128
EMA_BETA = 0.99  # the value `catgan bench` uses


def dcgan_init(module):
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def up(cin, cout, stride, padding, bias=False):
    return nn.ConvTranspose2d(cin, cout, 4, stride, padding, bias=bias)


def generator():
    layers = [nn.Unflatten(1, (LATENT, 1, 1)), up(LATENT, 512, 1, 0),
              nn.BatchNorm2d(512, eps=1e-5, momentum=0.1), nn.ReLU()]
    for cin, cout in [(512, 256), (256, 128), (128, 64)]:
        layers += [up(cin, cout, 2, 1), nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1), nn.ReLU()]
    layers += [up(64, 3, 2, 1, bias=True), nn.Tanh()]
    return nn.Sequential(*layers)


def discriminator():
    layers = [nn.Conv2d(3, 64, 4, 2, 1, bias=True), nn.LeakyReLU(0.2)]
    for cin, cout in [(64, 128), (128, 256), (256, 512)]:
        layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=False),
                   nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1), nn.LeakyReLU(0.2)]
    layers += [nn.Conv2d(512, 1, 4, 1, 0, bias=True), nn.Flatten(0)]
    return nn.Sequential(*layers)


def adam(module):
    return torch.optim.Adam(module.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=1e-8)


class Trainer:
    """The two networks, their optimisers and the generator's moving average."""

    def __init__(self, batch_size):
        self.batch_size = batch_size
        self.generator = generator().apply(dcgan_init)
        self.discriminator = discriminator().apply(dcgan_init)
        self.ema = generator()
        self.ema.load_state_dict(self.generator.state_dict())
        self.ema.requires_grad_(False)
        self.optimizer_generator = adam(self.generator)
        self.optimizer_discriminator = adam(self.discriminator)
        # Two batches of random "real" images in [-1, 1], alternated like catgan's bench.
        self.reals = [torch.rand(batch_size, 3, 64, 64) * 2 - 1 for _ in range(2)]

    def step(self, index):
        latent = torch.randn(self.batch_size, LATENT)
        reals = self.reals[index % 2]
        fakes = self.generator(latent)

        d_real = self.discriminator(reals)
        d_fake = self.discriminator(fakes.detach())
        loss_discriminator = (F.softplus(-d_real) + F.softplus(d_fake)).mean()
        self.optimizer_discriminator.zero_grad(set_to_none=True)
        loss_discriminator.backward()
        self.optimizer_discriminator.step()

        loss_generator = F.softplus(-self.discriminator(fakes)).mean()
        self.optimizer_generator.zero_grad(set_to_none=True)
        loss_generator.backward()
        self.optimizer_generator.step()

        with torch.no_grad():
            for average, live in zip(self.ema.parameters(), self.generator.parameters()):
                average.lerp_(live, 1 - EMA_BETA)
            for average, live in zip(self.ema.buffers(), self.generator.buffers()):
                average.copy_(live)
        return loss_generator.item()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    trainer = Trainer(args.batch_size)
    for i in range(args.warmup):
        trainer.step(i)
    rates = []
    for i in range(args.steps):
        start = time.perf_counter()
        trainer.step(args.warmup + i)
        rates.append(args.batch_size / (time.perf_counter() - start))
    rates.sort()
    print(json.dumps({
        "framework": "pytorch",
        "version": torch.__version__,
        "variant": f"eager, {args.threads} thread{'s' if args.threads > 1 else ''}",
        "threads": args.threads,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "images_per_second_median": rates[len(rates) // 2],
        "images_per_second_best": rates[-1],
        "images_per_second_worst": rates[0],
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "command": " ".join([os.path.relpath(sys.executable)] + sys.argv),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }))


if __name__ == "__main__":
    main()
