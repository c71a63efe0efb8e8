"""Memory estimates (`longvid.memory`) against measured peaks on the CPU, and against published figures (issue 13).

    python benchmarks/memory.py            # both parts; 35 minutes on 2 busy cores
    python benchmarks/memory.py --paper    # the published configs only, in a second

1. **On the CPU.** Real diffusers classes at the widths of published models (a layer or two of each transformer;
   the VAEs and Stable Diffusion 1.5's UNet at their published configs), randomly initialised, saved with
   `save_pretrained` and read back by `ModelConfigs.from_folder` (the estimate) and by `from_pretrained` in a fresh
   process per measurement (the measurement). The measured peak is that of the live tensors the forward pass
   creates, counted by a `TorchDispatchMode` from each new storage's allocation to its release: what
   `torch.cuda.max_memory_allocated` counts on a GPU, less the kernels' own scratch space. Beside it, the rise of the
   process's peak RSS over its RSS after loading (`VmHWM` after a reset through ``/proc/self/clear_refs``), which
   includes that scratch and the allocator's slack. Transformers are compared on the working memory of one forward
   (`Estimate.activations`), VAEs on the decode (`Estimate.decode`); several sizes each, so that the scaling with
   tokens, frames and area is checked and not one point.
2. **On paper.** The published configs of Wan 2.1 (1.3B, 14B), CogVideoX (2B, 5B) and LTX-Video 0.9, as dicts below:
   parameter counts from the formulas against the models' names, and estimated peaks against the memory figures
   their authors and the diffusers documentation publish, under the settings those figures were taken with.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from longvid.memory import ModelConfigs, Settings, estimate, parameter_count  # noqa: E402
from longvid.published_configs import (  # noqa: E402
    COGVIDEOX_VAE,
    LTX_TRANSFORMER,
    LTX_VAE,
    PUBLISHED,
    WAN_VAE,
    cogvideox_transformer,
    wan_transformer,
)

GIB = 2**30

def published(name: str, drop: tuple[str, ...] = ()) -> ModelConfigs:
    pipeline, configs, _ = PUBLISHED[name]
    return ModelConfigs.from_dicts({"_class_name": pipeline}, {k: v for k, v in configs.items() if k not in drop})


# (model, what was published, components not on the GPU, width, height, frames, dtype, compute dtype, settings,
#  published figure in GiB, source). The sources print "GB" for torch's bytes / 1024**3 (diffusers' replication
# scripts do), so the figures are read as GiB.
PAPER = [
    ("Wan2.1-T2V-1.3B", "diffusers, model offload", (), 832, 480, 33, "bfloat16", None,
     Settings(offload="model"), 11.0,
     "diffusers docs, api/pipelines/wan.md (v0.33): \"The following example requires 11GB VRAM\""),
    ("Wan2.1-T2V-1.3B", "Wan2.1 code, --offload_model True --t5_cpu", ("text_encoder",), 832, 480, 81, "float32",
     "bfloat16", Settings(offload="model"), 8.19,
     "Wan2.1 README: \"The T2V-1.3B model requires only 8.19 GB VRAM\" (RTX 4090, 480P)"),
    ("Wan2.1-I2V-14B-720P", "diffusers, model offload", (), 1280, 720, 33, "bfloat16", None,
     Settings(offload="model"), 35.0,
     "diffusers docs, wan.md (v0.33): \"can take up to 35GB of VRAM when generating videos at 720p\""),
    ("Wan2.1-I2V-14B-720P", "diffusers, fp8 layerwise casting + model offload", (), 1280, 720, 33, "float8",
     "bfloat16", Settings(offload="model"), 20.0, "diffusers docs, wan.md (v0.33): \"This example will require 20GB\""),
    ("CogVideoX-2b", "diffusers, no offload", (), 720, 480, 49, "float16", None, Settings(), 33.0,
     "diffusers docs, api/pipelines/cogvideox.md (v0.30): \"Without enabling cpu offloading, memory usage is 33 GB\""),
    ("CogVideoX-2b", "diffusers, model offload", (), 720, 480, 49, "float16", None, Settings(offload="model"), 19.0,
     "ibid.: \"With enabling cpu offloading, memory usage is 19 GB\""),
    ("CogVideoX-2b", "diffusers, model offload + VAE tiling", (), 720, 480, 49, "float16", None,
     Settings(offload="model", vae_tiling=True), 11.0,
     "ibid.: \"With enabling cpu offloading and tiling, memory usage is 11 GB\""),
    ("CogVideoX-2b", "diffusers, sequential offload + VAE tiling and slicing", (), 720, 480, 49, "float16", None,
     Settings(offload="sequential", vae_tiling=True, vae_slicing=True), 4.0,
     "ibid.: \"under 4 GB\"; CogVideoX README: \"diffusers FP16: 4GB minimum\" with these three optimisations"),
    ("CogVideoX-5b", "diffusers, sequential offload + VAE tiling and slicing", (), 720, 480, 49, "bfloat16", None,
     Settings(offload="sequential", vae_tiling=True, vae_slicing=True), 5.0,
     "CogVideoX README: \"diffusers BF16: 5GB minimum\""),
    ("LTX-Video 0.9", "diffusers, fp8 layerwise casting + group offload", (), 768, 512, 161, "float8", "bfloat16",
     Settings(offload="sequential"), 10.0,
     "diffusers docs, api/pipelines/ltx_video.md: \"The LTX-Video model below requires ~10GB of VRAM\""),
]


def paper() -> None:
    print("\nParameters from the published configs (formulas; `parameter_count`):\n")
    print("| model | transformer | its name says | off by | text encoder | VAE | image encoder |")
    print("|---|---|---|---|---|---|---|")
    for name, (_, configs, size) in PUBLISHED.items():
        counts = {k: parameter_count(v)[0] for k, v in configs.items()}
        image = f"{counts['image_encoder'] / 1e6:.0f} M" if "image_encoder" in counts else "-"
        print(f"| {name} | {counts['transformer'] / 1e9:.3f} B | {size / 1e9:g} B | "
              f"{counts['transformer'] / size - 1:+.0%} | {counts['text_encoder'] / 1e9:.3f} B | "
              f"{counts['vae'] / 1e6:.0f} M | {image} |")
    print("\nEstimated peaks against published figures:\n")
    print("| model | as published | size, frames | estimate | phase | published | estimate / published |")
    print("|---|---|---|---|---|---|---|")
    for name, what, drop, w, h, f, dtype, compute, settings, figure, _ in PAPER:
        e = estimate(published(name, drop), "chunk", w, h, f, dtype, settings, compute_dtype=compute)
        print(f"| {name} | {what} | {w}x{h}, {f} | {e.peak / GIB:.1f} GiB | {e.phase} | {figure:g} GiB | "
              f"{e.peak / GIB / figure:.2f} |")
    print("\nSources:")
    for name, what, *_, source in PAPER:
        print(f"- {name}, {what}: {source}")


# ------------------------------------------------------------------------------------------------ CPU measurements
# Each model: (pipeline class, {component: (diffusers class, config)}). Widths are the published ones; the
# transformers have one or two layers (activations are those of one block), text dims are small (only the
# cross-attention's keys and values see them).
MODELS = {
    "wan-256": ("WanPipeline", {
        "transformer": ("WanTransformer3DModel", wan_transformer(4, 2, 1024, attention_head_dim=64, text_dim=32)),
        "vae": ("AutoencoderKLWan", {k: v for k, v in WAN_VAE.items() if k != "_class_name"} | {"base_dim": 32})}),
    "wan-1.3b": ("WanPipeline", {
        "transformer": ("WanTransformer3DModel", wan_transformer(12, 2, 8960, text_dim=32)),
        "vae": ("AutoencoderKLWan", {k: v for k, v in WAN_VAE.items() if k != "_class_name"})}),
    "wan-14b": ("WanPipeline", {"transformer": ("WanTransformer3DModel", wan_transformer(40, 1, 13824, text_dim=32))}),
    "cogvideox-2b": ("CogVideoXPipeline", {
        "transformer": ("CogVideoXTransformer3DModel", cogvideox_transformer(30, 1, False) | {"text_embed_dim": 32}),
        "vae": ("AutoencoderKLCogVideoX", {k: v for k, v in COGVIDEOX_VAE.items() if k != "_class_name"})}),
    "ltx-0.9": ("LTXPipeline", {
        "transformer": ("LTXVideoTransformer3DModel", LTX_TRANSFORMER | {"num_layers": 1, "caption_channels": 32}),
        "vae": ("AutoencoderKLLTXVideo", {k: v for k, v in LTX_VAE.items() if k != "_class_name"})}),
    "sd-1.5": ("StableDiffusionPipeline", {
        "unet": ("UNet2DConditionModel", {"cross_attention_dim": 768}),
        "vae": ("AutoencoderKL", {"block_out_channels": [128, 256, 512, 512], "latent_channels": 4,
                                  "down_block_types": ["DownEncoderBlock2D"] * 4,
                                  "up_block_types": ["UpDecoderBlock2D"] * 4, "layers_per_block": 2})}),
    "svd": ("StableVideoDiffusionPipeline", {
        "vae": ("AutoencoderKLTemporalDecoder", {"block_out_channels": [128, 256, 512, 512], "latent_channels": 4,
                                                 "down_block_types": ["DownEncoderBlock2D"] * 4,
                                                 "layers_per_block": 2})}),
}
# (model, component, width, height, frames, dtype)
CASES = [
    ("wan-256", "transformer", 256, 256, 9, "float32"),
    ("wan-256", "transformer", 512, 256, 17, "float32"),
    ("wan-256", "transformer", 512, 512, 17, "float32"),
    ("wan-1.3b", "transformer", 256, 256, 9, "float32"),
    ("wan-1.3b", "transformer", 512, 256, 17, "float32"),
    ("wan-1.3b", "transformer", 512, 512, 17, "float32"),
    ("wan-1.3b", "transformer", 512, 256, 17, "bfloat16"),
    ("wan-14b", "transformer", 256, 256, 9, "float32"),
    ("wan-14b", "transformer", 512, 256, 17, "float32"),
    ("wan-14b", "transformer", 512, 256, 17, "bfloat16"),
    ("cogvideox-2b", "transformer", 256, 256, 9, "float32"),
    ("cogvideox-2b", "transformer", 512, 256, 17, "float32"),
    ("cogvideox-2b", "transformer", 512, 256, 17, "bfloat16"),
    ("ltx-0.9", "transformer", 512, 512, 17, "float32"),
    ("ltx-0.9", "transformer", 1024, 512, 33, "float32"),
    ("ltx-0.9", "transformer", 1024, 512, 33, "bfloat16"),
    ("sd-1.5", "unet", 256, 256, 1, "float32"),
    ("sd-1.5", "unet", 384, 384, 1, "float32"),
    ("wan-256", "vae", 256, 256, 9, "float32"),
    ("wan-256", "vae", 256, 256, 17, "float32"),
    ("wan-1.3b", "vae", 128, 128, 9, "float32"),
    ("wan-1.3b", "vae", 192, 192, 9, "float32"),
    ("wan-1.3b", "vae", 128, 128, 9, "bfloat16"),
    ("cogvideox-2b", "vae", 128, 128, 17, "float32"),
    ("cogvideox-2b", "vae", 160, 160, 17, "float32"),
    ("cogvideox-2b", "vae", 128, 128, 17, "bfloat16"),
    ("ltx-0.9", "vae", 128, 128, 9, "float32"),
    ("ltx-0.9", "vae", 128, 128, 17, "float32"),
    ("ltx-0.9", "vae", 256, 256, 9, "float32"),
    ("ltx-0.9", "vae", 256, 256, 9, "bfloat16"),
    ("sd-1.5", "vae", 256, 256, 1, "float32"),
    ("sd-1.5", "vae", 384, 384, 1, "float32"),
    ("svd", "vae", 128, 128, 2, "float32"),
    ("svd", "vae", 128, 128, 4, "float32"),
]


def build(name: str, root: Path) -> Path:
    """Save model `name` (random weights, bfloat16 on disk to spare it) with a model_index.json naming its
    pipeline and the components saved."""
    import diffusers
    import torch

    folder = root / name
    if (folder / "model_index.json").exists():
        return folder
    pipeline, components = MODELS[name]
    for component, (cls, config) in components.items():
        torch.manual_seed(0)
        getattr(diffusers, cls)(**config).to(torch.bfloat16).save_pretrained(folder / component)
    index = {"_class_name": pipeline} | {c: ["diffusers", cls] for c, (cls, _) in components.items()}
    (folder / "model_index.json").write_text(json.dumps(index))
    return folder


def measure(folder: str, component: str, width: int, height: int, frames: int, dtype: str) -> dict:
    """In this (fresh) process: load the component, run one forward pass or decode, return its peaks in bytes."""
    import ctypes
    import gc
    import weakref

    import diffusers
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    class LiveTensors(TorchDispatchMode):
        """Bytes of the storages ops create, from creation to release, and their peak."""

        def __init__(self):
            super().__init__()
            self.live = self.peak = 0
            self.seen = weakref.WeakSet()

        def free(self, n):
            self.live -= n

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            # views and in-place results share an input's storage: only new storages are new memory
            inputs = {t.untyped_storage().data_ptr() for t in tree_flatten((args, kwargs))[0]
                      if isinstance(t, torch.Tensor)}
            for t in tree_flatten(out)[0]:
                if isinstance(t, torch.Tensor):
                    storage = t.untyped_storage()
                    if storage in self.seen or storage.data_ptr() in inputs:
                        continue
                    self.seen.add(storage)
                    self.live += storage.nbytes()
                    weakref.finalize(storage, self.free, storage.nbytes())
            self.peak = max(self.peak, self.live)
            return out

    def status(key: str) -> int:
        line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(key))
        return int(line.split()[1]) * 1024

    torch.set_num_threads(2)
    torch.manual_seed(0)
    dt = getattr(torch, dtype)
    config = json.loads((Path(folder) / component / "config.json").read_text())
    model = getattr(diffusers, config["_class_name"]).from_pretrained(Path(folder) / component, torch_dtype=dt).eval()
    vae = json.loads((Path(folder) / "vae" / "config.json").read_text()) if (Path(folder) / "vae").is_dir() else {}
    cls = config["_class_name"]
    if cls == "WanTransformer3DModel":
        call = lambda: model(torch.randn(1, 16, (frames - 1) // 4 + 1, height // 8, width // 8, dtype=dt),  # noqa: E731
                             torch.tensor([500]), torch.randn(1, 512, config["text_dim"], dtype=dt))
    elif cls == "CogVideoXTransformer3DModel":
        call = lambda: model(torch.randn(1, (frames - 1) // 4 + 1, 16, height // 8, width // 8, dtype=dt),  # noqa: E731
                             torch.randn(1, 226, config["text_embed_dim"], dtype=dt), torch.tensor([500]))
    elif cls == "LTXVideoTransformer3DModel":
        f, h, w = (frames - 1) // 8 + 1, height // 32, width // 32
        call = lambda: model(torch.randn(1, f * h * w, 128, dtype=dt),  # noqa: E731
                             torch.randn(1, 128, config["caption_channels"], dtype=dt), torch.tensor([500]),
                             torch.ones(1, 128), num_frames=f, height=h, width=w)
    elif cls == "UNet2DConditionModel":  # classifier-free guidance: a batch of two
        call = lambda: model(torch.randn(2, 4, height // 8, width // 8, dtype=dt), torch.tensor([500]),  # noqa: E731
                             torch.randn(2, 77, config["cross_attention_dim"], dtype=dt))
    else:
        from longvid.memory import _spatial_scale, _temporal_scale

        s, t = _spatial_scale(vae), _temporal_scale(vae, None)
        channels = config.get("z_dim") or config.get("latent_channels")
        if cls in ("AutoencoderKL", "AutoencoderKLTemporalDecoder"):  # frames are images of the batch
            z = torch.randn(frames, channels, height // s, width // s, dtype=dt)
            kwargs = {"num_frames": frames} if cls == "AutoencoderKLTemporalDecoder" else {}
        else:
            z = torch.randn(1, channels, (frames - 1) // t + 1, height // s, width // s, dtype=dt)
            kwargs = {}
        call = lambda: model.decode(z, **kwargs)  # noqa: E731
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # give back what loading freed, so that RSS starts from the weights
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    before = status("VmRSS")
    start = time.perf_counter()
    with torch.no_grad(), LiveTensors() as live:
        out = call()
    seconds = time.perf_counter() - start
    del out
    return {"tensors": live.peak, "rss": status("VmHWM") - before, "seconds": seconds}


def cpu(root: Path) -> None:
    print("\nMeasured on the CPU (one forward pass or decode, fresh process each):\n")
    print("| model | component | size, frames | dtype | estimate | measured (tensors) | estimate / measured | "
          "peak RSS rise | time |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, component, w, h, f, dtype in CASES:
        folder = build(name, root)
        configs = ModelConfigs.from_folder(folder)
        if component == "vae":
            expected = estimate(configs, "decode", w, h, f, dtype).decode
        else:  # one pass of the denoiser: the UNet's batch of two, one video for the transformers
            e = estimate(configs, "keyframe" if component == "unet" else "sample", w, h, f, dtype,
                         Settings(guidance=component == "unet"))
            expected = e.activations
        args = json.dumps([str(folder), component, w, h, f, dtype])
        result = subprocess.run([sys.executable, __file__, "--measure", args], capture_output=True, text=True)
        if result.returncode != 0:
            print(f"| {name} | {component} | {w}x{h}, {f} | {dtype} | failed: {result.stderr.strip()[-200:]} |")
            continue
        m = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"| {name} | {component} | {w}x{h}, {f} | {dtype} | {expected / 2**20:.1f} MiB | "
              f"{m['tensors'] / 2**20:.1f} MiB | {expected / m['tensors']:.2f} | {m['rss'] / 2**20:.0f} MiB | "
              f"{m['seconds']:.1f} s |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paper", action="store_true", help="only the published configs (no torch needed)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: one measurement, in a fresh process
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*json.loads(args.measure))))
        return
    paper()
    if not args.paper:
        with tempfile.TemporaryDirectory(prefix="longvid-memory-") as root:
            cpu(Path(root))


if __name__ == "__main__":
    main()
