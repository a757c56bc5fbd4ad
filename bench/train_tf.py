"""TensorFlow side of `scripts/bench train`: catgan's DCGAN training step as one `tf.function`.

The step matches `catgan bench --arch dcgan`: one generator pass, a discriminator update on real
and detached fake images, a generator update through the freshly updated discriminator, and an
EMA update of the generator, all inside the compiled graph. Images are NHWC, TensorFlow's native
CPU layout. Prints one JSON line (images/s over the timed steps).
"""

import argparse
import json
import os
import resource
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep stdout to the one JSON line

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402

LATENT = 128
EMA_BETA = 0.99  # the value `catgan bench` uses


def init():
    return keras.initializers.RandomNormal(0.0, 0.02)


def norm():
    # Keras' momentum is the weight of the old statistics: 0.9 here is PyTorch's 0.1.
    return layers.BatchNormalization(momentum=0.9, epsilon=1e-5)


def generator():
    latent = keras.Input((LATENT,))
    x = layers.Reshape((1, 1, LATENT))(latent)
    x = layers.Conv2DTranspose(512, 4, 1, "valid", use_bias=False, kernel_initializer=init())(x)
    x = layers.ReLU()(norm()(x))
    for channels in (256, 128, 64):
        # "same" with kernel 4 and stride 2 pads one pixel on each side: PyTorch's padding 1.
        x = layers.Conv2DTranspose(channels, 4, 2, "same", use_bias=False,
                                   kernel_initializer=init())(x)
        x = layers.ReLU()(norm()(x))
    x = layers.Conv2DTranspose(3, 4, 2, "same", kernel_initializer=init())(x)
    return keras.Model(latent, layers.Activation("tanh")(x))


def discriminator():
    images = keras.Input((64, 64, 3))
    x = layers.Conv2D(64, 4, 2, "same", kernel_initializer=init())(images)
    x = layers.LeakyReLU(0.2)(x)
    for channels in (128, 256, 512):
        x = layers.Conv2D(channels, 4, 2, "same", use_bias=False, kernel_initializer=init())(x)
        x = layers.LeakyReLU(0.2)(norm()(x))
    x = layers.Conv2D(1, 4, 1, "valid", kernel_initializer=init())(x)
    return keras.Model(images, layers.Reshape(())(x))


def adam(model):
    optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5, beta_2=0.999, epsilon=1e-8)
    optimizer.build(model.trainable_variables)
    return optimizer


def make_step(gen, disc, ema, optimizer_generator, optimizer_discriminator, xla):
    @tf.function(jit_compile=xla)
    def step(reals, latent):
        with tf.GradientTape() as generator_tape:
            fakes = gen(latent, training=True)
            with generator_tape.stop_recording():
                with tf.GradientTape() as discriminator_tape:
                    d_real = disc(reals, training=True)
                    d_fake = disc(tf.stop_gradient(fakes), training=True)
                    loss_discriminator = tf.reduce_mean(
                        tf.nn.softplus(-d_real) + tf.nn.softplus(d_fake))
                grads = discriminator_tape.gradient(loss_discriminator, disc.trainable_variables)
                optimizer_discriminator.apply_gradients(zip(grads, disc.trainable_variables))
            # Variable reads are ordered after the update above (automatic control dependencies).
            loss_generator = tf.reduce_mean(tf.nn.softplus(-disc(fakes, training=True)))
        grads = generator_tape.gradient(loss_generator, gen.trainable_variables)
        optimizer_generator.apply_gradients(zip(grads, gen.trainable_variables))
        for average, live in zip(ema.weights, gen.weights):
            average.assign(live + EMA_BETA * (average - live))
        return loss_generator

    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (tracing)")
    parser.add_argument("--xla", action="store_true", help="compile the step with XLA")
    parser.add_argument("--threads", type=int, default=0,
                        help="intra-op threads (0: TensorFlow's default, one per core)")
    args = parser.parse_args()

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(0)
    gen, disc, ema = generator(), discriminator(), generator()
    ema.set_weights(gen.get_weights())
    step = make_step(gen, disc, ema, adam(gen), adam(disc), args.xla)
    reals = [tf.random.uniform((args.batch_size, 64, 64, 3), -1, 1) for _ in range(2)]

    def run(index):
        latent = tf.random.normal((args.batch_size, LATENT))
        return float(step(reals[index % 2], latent))

    for i in range(args.warmup):
        run(i)
    rates = []
    for i in range(args.steps):
        start = time.perf_counter()
        run(args.warmup + i)
        rates.append(args.batch_size / (time.perf_counter() - start))
    rates.sort()
    threads = args.threads or os.cpu_count()
    print(json.dumps({
        "framework": "tensorflow",
        "version": tf.__version__,
        "variant": "tf.function" + (" + XLA" if args.xla else "")
                   + f", {threads} thread{'s' if threads > 1 else ''}",
        "threads": threads,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "images_per_second_median": rates[len(rates) // 2],
        "images_per_second_best": rates[-1],
        "images_per_second_worst": rates[0],
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "command": " ".join([os.path.relpath(sys.executable)] + sys.argv),
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)"),
    }))


if __name__ == "__main__":
    main()
