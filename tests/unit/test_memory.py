"""Memory planning: parameter counts from weights and configs, estimates that scale as the work does, the settings
`choose` picks, and device memory sizes."""

from __future__ import annotations

import pytest

from benchmarks.memory import PUBLISHED, published
from longvid.errors import UserError
from longvid.memory import (
    ModelConfigs,
    Settings,
    choose,
    device_memory,
    estimate,
    parameter_count,
)

GIB = 2**30


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return tmp_path_factory.mktemp("tiny-memory")


@pytest.mark.parametrize("kind", ["wan", "wan-i2v", "wan-vace", "cogvideox", "ltx"])
def test_safetensors_headers_count_every_parameter_and_the_formulas_agree(tiny_root, kind):
    import diffusers
    import transformers

    from tests.tiny_models import build

    folder = build(kind, tiny_root)
    configs = ModelConfigs.from_folder(folder)
    assert configs.family == kind.split("-")[0]
    for name, component in configs.components.items():
        library = transformers if name in ("text_encoder", "image_encoder") else diffusers
        module = getattr(library, component.cls).from_pretrained(folder / name)
        # what is saved is what takes memory: the parameters and the persistent buffers (LTX's latent statistics)
        tensors = {t.data_ptr(): t.numel() for t in module.state_dict().values()}  # tied weights once
        buffers = sum(b.numel() for n, b in module.named_buffers() if n in module.state_dict())
        assert component.exact
        assert component.params == sum(p.numel() for p in module.parameters()) + buffers == sum(tensors.values())
        assert component.largest == max(tensors.values())
        if name != "vae":  # VAEs have no formula of their own, only a published size scaled by width
            assert parameter_count(component.config) == (component.params, component.largest)


def test_published_wan_and_cogvideox_configs_count_near_their_names():
    for name, size, within in [("Wan2.1-T2V-1.3B", 1.3e9, 0.10), ("Wan2.1-T2V-14B", 14e9, 0.10),
                               ("CogVideoX-5b", 5e9, 0.12), ("LTX-Video 0.9", 2e9, 0.05)]:
        params = published(name).components["transformer"].params
        assert abs(params / size - 1) < within, (name, params)
    # UMT5-XXL's encoder, Wan's text encoder: 5.68 billion parameters, a quarter of a million words of vocabulary
    assert published("Wan2.1-T2V-1.3B").components["text_encoder"].params == 5_680_910_336


def test_formulas_equal_the_published_architectures_built_on_the_meta_device():
    torch = pytest.importorskip("torch")
    import diffusers

    for name in ("Wan2.1-T2V-1.3B", "CogVideoX-2b", "LTX-Video 0.9"):
        config = dict(PUBLISHED[name][1]["transformer"])
        with torch.device("meta"):
            model = getattr(diffusers, config.pop("_class_name"))(**config)
        assert parameter_count(PUBLISHED[name][1]["transformer"])[0] == sum(p.numel() for p in model.parameters())


def test_estimates_grow_with_frames_and_size_as_the_work_does():
    wan = published("Wan2.1-T2V-1.3B")
    small = estimate(wan, "chunk", 832, 480, 41, "bfloat16")
    longer = estimate(wan, "chunk", 832, 480, 81, "bfloat16")
    wider = estimate(wan, "chunk", 1664, 960, 41, "bfloat16")
    # tokens: 11 x 30 x 52 latent frames and patches, then 21 x 30 x 52, then 11 x 60 x 104
    assert small.activations == 11 * 30 * 52 * (2 * (2 * 8960 + 4 * 1536) + 8 * 128)
    assert longer.activations * 11 == small.activations * 21
    assert wider.activations == 4 * small.activations
    # Wan decodes one latent frame at a time: more frames add only the decoded video, a larger frame scales it all
    assert longer.decode - small.decode == 3 * 40 * 832 * 480 * 2 * 2
    assert wider.decode == pytest.approx(4 * small.decode, rel=1e-9)
    # no offload: every weight is on the device, in bfloat16
    assert small.weights_on_device == 2 * sum(wan.parameters().values())
    assert small.peak < longer.peak < wider.peak
    # LTX decodes every frame at once: its decode grows with the frames
    ltx = published("LTX-Video 0.9")
    assert estimate(ltx, "decode", 768, 512, 161, "bfloat16").decode > \
        1.9 * estimate(ltx, "decode", 768, 512, 81, "bfloat16").decode


def test_offload_holds_the_largest_component_or_one_tensor():
    wan = published("Wan2.1-T2V-1.3B")
    model = estimate(wan, "chunk", 832, 480, 33, "bfloat16", {"offload": "model"})
    # model offload: the peak is the text encoder alone, UMT5-XXL's 5.68B parameters (diffusers' docs: 11 GB)
    assert (model.phase, model.weights_on_device) == ("encode", 2 * 5_680_910_336)
    sequential = estimate(wan, "chunk", 832, 480, 33, "bfloat16", Settings(offload="sequential"))
    # sequential offload: one module at a time, the largest being UMT5's embedding of 256384 words x 4096
    assert sequential.weights_on_device <= 2 * 256384 * 4096
    assert sequential.peak < model.peak
    # `offload: auto` not yet decided (no device size): everything stays on the device
    assert estimate(wan, "chunk", 832, 480, 33, "bfloat16", {"offload": "auto"}) == \
        estimate(wan, "chunk", 832, 480, 33, "bfloat16")
    # the Wan2.1 code: the text encoder on the CPU (--t5_cpu), float32 weights run under bfloat16 autocast
    original = estimate(published("Wan2.1-T2V-1.3B", drop=("text_encoder",)), "chunk", 832, 480, 81, "float32",
                        {"offload": "model"}, compute_dtype="bfloat16")
    assert (original.phase, original.weights_on_device) == ("denoise", 4 * 1_418_996_800)


def test_classifier_free_guidance_doubles_the_batch_only_where_the_pipeline_batches_it():
    cog = published("CogVideoX-2b")
    with_cfg = estimate(cog, "sample", 720, 480, 49, "float16")
    without = estimate(cog, "sample", 720, 480, 49, "float16", {"guidance": 1.0})
    assert with_cfg.activations == 2 * without.activations
    wan = published("Wan2.1-T2V-1.3B")  # Wan runs the unconditional pass after the conditional one
    assert estimate(wan, "sample", 832, 480, 33).activations == \
        estimate(wan, "sample", 832, 480, 33, settings={"guidance": 1.0}).activations
    assert with_cfg.decode == 0  # a sample task stores latents: no decode


def test_wan_image_to_video_encodes_the_chunks_frames_with_its_vae():
    # the pipeline encodes the image padded with empty frames to the chunk's length: as costly as decoding them
    i2v = estimate(published("Wan2.1-I2V-14B-720P"), "sample", 1280, 720, 81, "bfloat16", {"offload": "sequential"})
    assert i2v.phase == "condition" and i2v.decode == 0
    assert i2v.peak - i2v.weights_on_device == \
        estimate(published("Wan2.1-I2V-14B-720P"), "decode", 1280, 720, 81, "bfloat16").decode
    t2v = estimate(published("Wan2.1-T2V-14B"), "sample", 1280, 720, 81, "bfloat16", {"offload": "sequential"})
    assert t2v.phase == "denoise"


def test_float16_keeps_t5s_feed_forward_output_in_float32():
    cog = published("CogVideoX-2b")
    t5 = cog.components["text_encoder"]
    assert t5.bytes("float16") == 2 * t5.params + 24 * 10240 * 4096 * 2
    assert t5.bytes("bfloat16") == 2 * t5.params


def test_tiling_cuts_the_decode_of_a_large_frame():
    cog = published("CogVideoX-2b")
    untiled = estimate(cog, "decode", 720, 480, 49, "float16")
    tiled = estimate(cog, "decode", 720, 480, 49, "float16", Settings(vae_tiling=True, vae_slicing=True))
    assert 3.0 < untiled.decode / tiled.decode < 4.0  # tiles of 360x240: a quarter of the frame, plus the overlaps


def test_choose_picks_the_cheapest_settings_that_fit():
    cog = published("CogVideoX-2b")  # 720x480, 49 frames in float16: 29.3 GiB as it is, 10.8 with offload

    def picked(gib: float):
        c = choose(cog, "chunk", 720, 480, 49, "float16", int(gib * GIB))
        return c.offload, c.vae_tiling, c.vae_slicing, c.fits

    assert picked(80) == ("none", False, False, True)
    assert picked(24) == ("none", True, True, True)
    assert picked(16) == ("model", True, True, True)
    assert picked(6) == ("sequential", True, True, True)
    assert picked(2) == ("sequential", True, True, False)
    tiny = choose(cog, "chunk", 720, 480, 49, "float16", 2 * GIB)
    assert tiny.estimate.peak > 0.9 * 2 * GIB and "sequential offload" in tiny.estimate.explanation
    assert tiny.settings() == {"offload": "sequential", "vae_tiling": True, "vae_slicing": True}


def test_choose_lowers_the_decode_chunk_of_a_chunk_decoding_vae(tiny_root):
    from tests.tiny_models import build

    svd = ModelConfigs.from_folder(build("svd", tiny_root))
    # SVD decodes inside its chunk task (its pipeline's decode_chunk_size): the setting is the chunk task's
    at_8 = estimate(svd, "chunk", 1024, 576, 25, "float16")
    at_2 = estimate(svd, "chunk", 1024, 576, 25, "float16", {"decode_chunk_size": 2})
    assert at_8.decode > at_2.decode
    # where the decode is the peak, a smaller decode chunk is chosen before any offload
    budget = int((at_2.decode + at_8.decode) / 2 / 0.9)
    c = choose(svd, "chunk", 64, 64, 25, "float16", budget)
    assert c.decode_chunk_size in (None, 2) and (c.decode_chunk_size == 2) == (
        estimate(svd, "chunk", 64, 64, 25, "float16").peak > 0.9 * budget)
    # a task that would not pass it on to the pipeline is never given it (plan == run)
    assert choose(svd, "decode", 1024, 576, 25, "float16", 1).decode_chunk_size is None


@pytest.mark.parametrize(("spec", "size"), [("24GiB", 24 * GIB), ("24G", 24 * GIB), ("80GB", 80 * 10**9),
                                            ("24000MiB", 24000 * 2**20), ("1.5 TiB", int(1.5 * 2**40)),
                                            ("16gib", 16 * GIB), ("512M", 512 * 2**20)])
def test_device_memory_reads_sizes(spec, size):
    assert device_memory(spec) == size


@pytest.mark.parametrize("spec", ["24", "lots", "-3GiB", "0GiB", "24 GiBs", "GiB", ""])
def test_device_memory_names_the_flag_and_the_forms_it_takes(spec):
    with pytest.raises(UserError) as info:
        device_memory(spec)
    assert str(info.value) == f"`--device-memory` ({spec!r}) must be a size such as 24GiB, 24G, 80GB or 24000MiB"


def test_bad_kind_and_dtype_name_the_value():
    wan = published("Wan2.1-T2V-1.3B")
    with pytest.raises(UserError, match=r"^`kind` \('video'\) must be one of chunk, sample, decode"):
        estimate(wan, "video", 832, 480, 33)
    with pytest.raises(UserError, match=r"^`dtype` \('int4'\) must be one of float32"):
        estimate(wan, "chunk", 832, 480, 33, "int4")


def write_safetensors(path, shapes: dict[str, list[int]]) -> None:
    """A safetensors file as the format defines it: the header's length, the header, then the (zero) data."""
    import json
    import math
    import struct

    offset, header = 0, {"__metadata__": {"format": "pt"}}
    for name, shape in shapes.items():
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + 2 * math.prod(shape)]}
        offset += 2 * math.prod(shape)
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + bytes(offset))


def test_headers_count_one_variant_of_sharded_weights_and_locate_finds_the_hub_cache(tmp_path, monkeypatch):
    import json

    model = tmp_path / "hub" / "models--org--tiny" / "snapshots" / "abc123"
    (model / "transformer").mkdir(parents=True)
    (model / "model_index.json").write_text(json.dumps({"_class_name": "WanPipeline",
                                                        "transformer": ["diffusers", "WanTransformer3DModel"],
                                                        "scheduler": ["diffusers", "UniPCMultistepScheduler"]}))
    (model / "transformer" / "config.json").write_text(json.dumps({"_class_name": "WanTransformer3DModel"}))
    write_safetensors(model / "transformer" / "diffusion_pytorch_model-00001-of-00002.safetensors", {"a": [4, 8]})
    write_safetensors(model / "transformer" / "diffusion_pytorch_model-00002-of-00002.safetensors", {"b": [3, 100]})
    write_safetensors(model / "transformer" / "diffusion_pytorch_model.fp16.safetensors", {"a": [4, 8], "b": [300]})
    # a later snapshot that the main branch does not point to
    (model.parent / "zzz999").mkdir()
    (model.parent / "zzz999" / "model_index.json").write_text(json.dumps({"_class_name": "LTXPipeline"}))
    (model.parents[1] / "refs").mkdir()
    (model.parents[1] / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    configs = ModelConfigs.locate("org/tiny", tmp_path)
    assert configs.pipeline == "WanPipeline" and configs.family == "wan"
    transformer = configs.components["transformer"]
    assert (transformer.params, transformer.largest, transformer.exact) == (332, 300, True)
    assert list(configs.components) == ["transformer"]  # a scheduler holds no weights
    assert ModelConfigs.locate(str(model), tmp_path).parameters() == {"transformer": 332}
    assert ModelConfigs.locate("org/absent", tmp_path) is None
