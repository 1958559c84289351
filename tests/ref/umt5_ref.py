#!/usr/bin/env python3
"""Reference hidden states of transformers' UMT5EncoderModel (float32) on tiny
random configurations, for tests/unit/test_text_encode_umt5.c, in every weight
layout text-encode reads.

Configurations (tests/fixtures/umt5/<cfg>/):
  a: d_model 32, 4 heads x d_kv 8, 2 layers, d_ff 48, 32 buckets, max distance
     128 (T5's defaults, so the layouts without config.json can infer it),
     128 embedding rows
  b: d_model 24, 3 heads x d_kv 10 (inner 30 != d_model), 3 layers, d_ff 40,
     16 buckets, max distance 20 (sequences of 40 reach the clamped bucket),
     eps 1e-5, 96 rows: only with config.json
Every weight is random, norms included (uniform 0.5..1.5), the relative
attention biases too (normal, std 1); values are rounded to bfloat16 and kept
away from float16's subnormals, so the f32, bf16 and f16 files hold the very
same numbers and share one expected output.

Files per configuration:
  hf/config.json + hf/model.safetensors     Hugging Face layout, float32
  hf_bf16/config.json + model.safetensors   the same in bfloat16
  wan.pth            (a only) Wan2.1's names (token_embedding, blocks.N.*), torch.save
  wan_fp16.safetensors  (a only) the same names in a safetensors file, float16
  comfy_fp16.safetensors  (a only) ComfyUI's single file, float16
  t5.gguf            (a only) llama.cpp's T5 names, float16 matrices and float32
                     norms, in a GGUF written here by hand
  comfy_fp8.safetensors   (a only) ComfyUI's fp8_e4m3fn_scaled: linear weights
                     float8_e4m3fn with a per-tensor "<name>.scale_weight" and a
                     "scaled_fp8" marker; its own expected output (expected_fp8)
  expected.safetensors  ids_<i> (int32 [L]), out_<i> (float32 [L, d_model]) for
                     each prompt alone, out_fp8_<i> (a only), and buckets
                     (int32 [801]: HF's bucket of relative position -400..400)
The batch: HF run on all prompts padded with an attention mask agrees with the
prompts alone (checked here, max abs difference printed).

Usage: /tmp/ref/bin/python tests/ref/umt5_ref.py [OUTDIR]   (default tests/fixtures/umt5)
"""
import json
import os
import sys

import torch
import transformers
from safetensors.torch import save_file
from transformers import UMT5Config, UMT5EncoderModel

CFGS = {
    "a": dict(vocab_size=128, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_heads=4,
              relative_attention_num_buckets=32, relative_attention_max_distance=128, layer_norm_epsilon=1e-6),
    "b": dict(vocab_size=96, d_model=24, d_kv=10, d_ff=40, num_layers=3, num_heads=3,
              relative_attention_num_buckets=16, relative_attention_max_distance=20, layer_norm_epsilon=1e-5),
}
LENGTHS = [1, 5, 17, 40]


def exact16(t):
    """round to bfloat16 and flush magnitudes below 2^-14 (float16 subnormals) to +-2^-14"""
    t = t.to(torch.bfloat16).float()
    small = t.abs() < 2.0 ** -14
    return torch.where(small, torch.sign(t) * 2.0 ** -14 + (t == 0) * 2.0 ** -14, t)


def randomise(model, g):
    sd = model.state_dict()
    for k, v in sd.items():
        if k == "encoder.embed_tokens.weight":
            continue
        if "layer_norm" in k:
            nv = torch.rand(v.shape, generator=g) + 0.5
        elif "relative_attention_bias" in k:
            nv = torch.randn(v.shape, generator=g)
        elif k == "shared.weight":
            nv = torch.randn(v.shape, generator=g)
        else:
            nv = torch.randn(v.shape, generator=g) / v.shape[1] ** 0.5
        v.copy_(exact16(nv))
    model.encoder.embed_tokens.weight = model.shared.weight


def hf_tensors(model):
    sd = {k: v.contiguous() for k, v in model.state_dict().items() if k != "encoder.embed_tokens.weight"}
    return sd


def wan_tensors(sd, n_layers):
    out = {"token_embedding.weight": sd["shared.weight"], "norm.weight": sd["encoder.final_layer_norm.weight"]}
    for i in range(n_layers):
        p = "encoder.block.%d." % i
        w = "blocks.%d." % i
        out[w + "norm1.weight"] = sd[p + "layer.0.layer_norm.weight"]
        for x in "qkvo":
            out[w + "attn.%s.weight" % x] = sd[p + "layer.0.SelfAttention.%s.weight" % x]
        out[w + "pos_embedding.embedding.weight"] = sd[p + "layer.0.SelfAttention.relative_attention_bias.weight"]
        out[w + "norm2.weight"] = sd[p + "layer.1.layer_norm.weight"]
        out[w + "ffn.gate.0.weight"] = sd[p + "layer.1.DenseReluDense.wi_0.weight"]
        out[w + "ffn.fc1.weight"] = sd[p + "layer.1.DenseReluDense.wi_1.weight"]
        out[w + "ffn.fc2.weight"] = sd[p + "layer.1.DenseReluDense.wo.weight"]
    return out


def gguf_tensors(sd, n_layers):
    """llama.cpp's T5 encoder names (city96's umT5 GGUF)"""
    out = {"token_embd.weight": sd["shared.weight"], "enc.output_norm.weight": sd["encoder.final_layer_norm.weight"]}
    for i in range(n_layers):
        p = "encoder.block.%d." % i
        g = "enc.blk.%d." % i
        out[g + "attn_norm.weight"] = sd[p + "layer.0.layer_norm.weight"]
        for x in "qkvo":
            out[g + "attn_%s.weight" % x] = sd[p + "layer.0.SelfAttention.%s.weight" % x]
        out[g + "attn_rel_b.weight"] = sd[p + "layer.0.SelfAttention.relative_attention_bias.weight"]
        out[g + "ffn_norm.weight"] = sd[p + "layer.1.layer_norm.weight"]
        out[g + "ffn_gate.weight"] = sd[p + "layer.1.DenseReluDense.wi_0.weight"]
        out[g + "ffn_up.weight"] = sd[p + "layer.1.DenseReluDense.wi_1.weight"]
        out[g + "ffn_down.weight"] = sd[p + "layer.1.DenseReluDense.wo.weight"]
    return out


def write_gguf(tensors, path):
    """GGUF v3 written by hand: float16 matrices, float32 vectors (as
    llama.cpp's converter stores norms), data aligned to 32 bytes"""
    import struct

    def s(x):
        b = x.encode()
        return struct.pack("<Q", len(b)) + b
    kv = s("general.architecture") + struct.pack("<I", 8) + s("t5encoder")
    infos, blobs, off = [], [], 0
    for name, t in tensors.items():
        a = (t.half() if t.dim() > 1 else t.float()).contiguous().numpy()
        typ = 1 if t.dim() > 1 else 0
        ne = list(reversed(a.shape))
        infos.append(s(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne) +
                     struct.pack("<IQ", typ, off))
        b = a.tobytes()
        pad = (-len(b)) % 32
        blobs.append(b + b"\0" * pad)
        off += len(b) + pad
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), 1) + kv + b"".join(infos)
    head += b"\0" * ((-len(head)) % 32)
    with open(path, "wb") as f:
        f.write(head + b"".join(blobs))


def fp8_tensors(sd):
    """ComfyUI's scaled fp8: linear weights as e4m3fn * scale_weight; returns the
    file's tensors and the dequantised float32 state dict"""
    out, deq = {}, {}
    for k, v in sd.items():
        if v.dim() == 2 and ("SelfAttention." in k and "relative" not in k or "DenseReluDense" in k):
            scale = v.abs().max() / 448.0
            q = (v / scale).to(torch.float8_e4m3fn)
            out[k] = q
            out[k[: -len("weight")] + "scale_weight"] = scale.reshape(()).float()
            deq[k] = q.float() * scale
        else:
            out[k] = v.half()
            deq[k] = v
    out["scaled_fp8"] = torch.empty(0, dtype=torch.float8_e4m3fn)
    return out, deq


def run(model, ids_list):
    outs = []
    with torch.no_grad():
        for ids in ids_list:
            outs.append(model(input_ids=ids[None]).last_hidden_state[0].float())
        L = max(len(i) for i in ids_list)
        batch = torch.zeros(len(ids_list), L, dtype=torch.long)
        mask = torch.zeros(len(ids_list), L, dtype=torch.long)
        for b, ids in enumerate(ids_list):
            batch[b, : len(ids)] = ids
            mask[b, : len(ids)] = 1
        hb = model(input_ids=batch, attention_mask=mask).last_hidden_state
        diff = max((hb[b, : len(ids)] - outs[b]).abs().max().item() for b, ids in enumerate(ids_list))
    return outs, diff


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/umt5"
    torch.manual_seed(0)
    for name, kw in CFGS.items():
        d = os.path.join(root, name)
        os.makedirs(os.path.join(d, "hf"), exist_ok=True)
        cfg = UMT5Config(feed_forward_proj="gated-gelu", **kw)
        model = UMT5EncoderModel(cfg).eval()
        g = torch.Generator().manual_seed(16 + ord(name))
        randomise(model, g)
        sd = hf_tensors(model)
        cj = {k: getattr(cfg, k) for k in ["d_model", "d_kv", "d_ff", "num_layers", "num_heads", "vocab_size",
                                           "relative_attention_num_buckets", "relative_attention_max_distance",
                                           "layer_norm_epsilon", "feed_forward_proj"]}
        cj["architectures"] = ["UMT5EncoderModel"]
        cj["model_type"] = "umt5"
        for sub, dt in (("hf", torch.float32), ("hf_bf16", torch.bfloat16)):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
            with open(os.path.join(d, sub, "config.json"), "w") as f:
                json.dump(cj, f, indent=1)
            save_file({k: v.to(dt) for k, v in sd.items()}, os.path.join(d, sub, "model.safetensors"))
        ids_list = [torch.randint(0, kw["vocab_size"], (n,), generator=g) for n in LENGTHS]
        outs, diff = run(model, ids_list)
        exp = {}
        for i, (ids, o) in enumerate(zip(ids_list, outs)):
            exp["ids_%d" % i] = ids.to(torch.int32)
            exp["out_%d" % i] = o.contiguous()
        rel = torch.arange(-400, 401)[None, :]
        exp["buckets"] = model.encoder.block[0].layer[0].SelfAttention._relative_position_bucket(rel)[0].to(torch.int32)
        if name == "a":
            torch.save(wan_tensors(sd, kw["num_layers"]), os.path.join(d, "wan.pth"))
            save_file({k: v.half() for k, v in wan_tensors(sd, kw["num_layers"]).items()},
                      os.path.join(d, "wan_fp16.safetensors"))
            save_file({k: v.half() for k, v in sd.items()}, os.path.join(d, "comfy_fp16.safetensors"))
            write_gguf(gguf_tensors(sd, kw["num_layers"]), os.path.join(d, "t5.gguf"))
            f8, deq = fp8_tensors(sd)
            save_file(f8, os.path.join(d, "comfy_fp8.safetensors"))
            m8 = UMT5EncoderModel(cfg).eval()
            m8.load_state_dict({**deq, "encoder.embed_tokens.weight": deq["shared.weight"]})
            outs8, _ = run(m8, ids_list)
            for i, o in enumerate(outs8):
                exp["out_fp8_%d" % i] = o.contiguous()
        save_file(exp, os.path.join(d, "expected.safetensors"),
                  metadata={"generator": "tests/ref/umt5_ref.py", "torch": torch.__version__,
                            "transformers": transformers.__version__})
        print("%s: batch vs alone max abs diff %.3g" % (name, diff), file=sys.stderr)


TOOL_PROMPTS = ["A red fox &amp; a crow   in the  snow", "日本語のテキスト、雪の中の狐"]
WAN_NEGATIVE = ("色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，"
                "丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，"
                "杂乱的背景，三条腿，背景人很多，倒着走")


def tool_fixture(root):
    """tests/fixtures/umt5/tool: a bfloat16 HF folder whose 1600 embedding
    rows cover tests/fixtures/spm/uni_nobf.tokenizer.json, and the states of
    TOOL_PROMPTS and Wan's negative prompt, cleaned as Wan does and
    tokenised by `tokenizers` with that file (tests/cli/t8000-text-encode.sh)"""
    import html
    import re
    import tokenizers
    d = os.path.join(root, "tool")
    os.makedirs(os.path.join(d, "hf"), exist_ok=True)
    kw = dict(vocab_size=1600, d_model=16, d_kv=8, d_ff=24, num_layers=2, num_heads=2,
              relative_attention_num_buckets=32, relative_attention_max_distance=128, layer_norm_epsilon=1e-6)
    cfg = UMT5Config(feed_forward_proj="gated-gelu", **kw)
    model = UMT5EncoderModel(cfg).eval()
    randomise(model, torch.Generator().manual_seed(8000))
    sd = hf_tensors(model)
    cj = dict(kw, feed_forward_proj="gated-gelu", architectures=["UMT5EncoderModel"], model_type="umt5")
    with open(os.path.join(d, "hf", "config.json"), "w") as f:
        json.dump(cj, f, indent=1)
    save_file({k: v.to(torch.bfloat16) for k, v in sd.items()}, os.path.join(d, "hf", "model.safetensors"))
    tk = tokenizers.Tokenizer.from_file(os.path.join(os.path.dirname(root.rstrip("/")), "spm", "uni_nobf.tokenizer.json"))
    exp = {}
    texts = [("prompt.%d" % i, p) for i, p in enumerate(TOOL_PROMPTS)] + [("negative", WAN_NEGATIVE)]
    for name, t in texts:
        t = re.sub(r"\s+", " ", html.unescape(html.unescape(t)).strip()).strip()
        ids = tk.encode(t).ids[:511]
        with torch.no_grad():
            o = model(input_ids=torch.tensor([ids])).last_hidden_state[0]
        exp[name] = o.contiguous()
        exp[name + ".ids"] = torch.tensor(ids, dtype=torch.int32)
    save_file(exp, os.path.join(d, "expected.safetensors"),
              metadata={"generator": "tests/ref/umt5_ref.py", "torch": torch.__version__,
                        "transformers": transformers.__version__, "tokenizers": tokenizers.__version__})


if __name__ == "__main__":
    main()
    tool_fixture(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/umt5")
