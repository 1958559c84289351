"""Helper of tests/bench/t5/run.sh: `make DIR LAYERS` writes a random bf16
umT5 encoder folder; `compare WORK THREADS` runs transformers on the ids of
text-encode's report and prints the table."""
import json
import os
import resource
import sys
import time

import torch


def make(d, layers):
    from safetensors.torch import save_file
    os.makedirs(d, exist_ok=True)
    cfg = dict(vocab_size=256384, d_model=4096, d_kv=64, d_ff=10240, num_layers=layers, num_heads=64,
               relative_attention_num_buckets=32, relative_attention_max_distance=128, layer_norm_epsilon=1e-6,
               feed_forward_proj="gated-gelu", architectures=["UMT5EncoderModel"], model_type="umt5")
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    g = torch.Generator().manual_seed(0)

    def rnd(*shape, std=1.0, base=0.0):
        t = torch.empty(*shape, dtype=torch.bfloat16)
        # fill in chunks so that no float32 copy of a big tensor exists
        flat = t.view(-1)
        step = 1 << 24
        for i in range(0, flat.numel(), step):
            n = min(step, flat.numel() - i)
            flat[i:i + n] = (torch.randn(n, generator=g) * std + base).to(torch.bfloat16)
        return t
    sd = {"shared.weight": rnd(256384, 4096), "encoder.final_layer_norm.weight": rnd(4096, std=0.1, base=1.0)}
    for i in range(layers):
        p = "encoder.block.%d.layer." % i
        for x in "qkv":
            sd[p + "0.SelfAttention.%s.weight" % x] = rnd(4096, 4096, std=4096 ** -0.5)
        sd[p + "0.SelfAttention.o.weight"] = rnd(4096, 4096, std=4096 ** -0.5)
        sd[p + "0.SelfAttention.relative_attention_bias.weight"] = rnd(32, 64)
        sd[p + "0.layer_norm.weight"] = rnd(4096, std=0.1, base=1.0)
        sd[p + "1.DenseReluDense.wi_0.weight"] = rnd(10240, 4096, std=4096 ** -0.5)
        sd[p + "1.DenseReluDense.wi_1.weight"] = rnd(10240, 4096, std=4096 ** -0.5)
        sd[p + "1.DenseReluDense.wo.weight"] = rnd(4096, 10240, std=10240 ** -0.5)
        sd[p + "1.layer_norm.weight"] = rnd(4096, std=0.1, base=1.0)
    save_file(sd, os.path.join(d, "model.safetensors"))


def load_st(path):
    from safetensors.torch import load_file
    return load_file(path)


def compare(work, threads):
    from transformers import UMT5EncoderModel
    torch.set_num_threads(threads)
    rep = json.load(open(os.path.join(work, "ours.json")))
    ids = rep["prompts"][0]["ids"]
    ours_s = rep["encode"]["seconds"]
    ours_rss = int(open(os.path.join(work, "ours.rss")).read().split()[-1]) * 1024
    wbytes = os.path.getsize(os.path.join(work, "model", "model.safetensors"))
    model = UMT5EncoderModel.from_pretrained(os.path.join(work, "model"), torch_dtype=torch.bfloat16).eval()
    x = torch.tensor([ids])
    with torch.no_grad():
        t0 = time.time()
        h = model(input_ids=x).last_hidden_state[0].float()
        ref_s = time.time() - t0
        # a second forward: oneDNN creates and caches its kernels on the first
        t0 = time.time()
        model(input_ids=x)
        warm_s = time.time() - t0
    ref_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    ours = load_st(os.path.join(work, "ours.safetensors"))["prompt.0"]
    rel = ((ours - h).abs().max() / h.abs().max()).item()
    n = len(ids)
    print()
    print("| | seconds | tokens/s | peak RSS | RSS / weight bytes |")
    print("|---|---|---|---|---|")
    prec = os.environ.get("ISOPIPE_NN_PREC", "")
    mode = {"bf16": "bf16 activations, ISOPIPE_NN_PREC=bf16",
            "bf16x2": "activations in 2 bf16 terms, ISOPIPE_NN_PREC=bf16x2"}.get(prec, "f32 compute")
    if os.environ.get("ISOPIPE_NN_AMX") == "0":
        mode += ", ISOPIPE_NN_AMX=0"
    print("| text-encode (bf16 weights, %s) | %.2f | %.1f | %.2f GB | %.2f |"
          % (mode, ours_s, n / ours_s, ours_rss / 1e9, ours_rss / wbytes))
    print("| transformers %s, torch %s (bf16) | %.2f | %.1f | %.2f GB | %.2f |"
          % (__import__("transformers").__version__, torch.__version__, ref_s, n / ref_s, ref_rss / 1e9,
             ref_rss / wbytes))
    print()
    print("%d tokens; weights %.2f GB; speed ratio (transformers time / ours) %.2f; states: max abs difference / "
          "max abs value %.3g (transformers computes in bf16)" % (n, wbytes / 1e9, ref_s / ours_s, rel))
    print("transformers' second forward in the same process: %.2f s (ratio against ours %.2f); ours is a first "
          "forward, as the tool runs once per process" % (warm_s, warm_s / ours_s))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], int(sys.argv[3]))
    else:
        compare(sys.argv[2], int(sys.argv[3]))
