#!/usr/bin/env python3
"""The reference side of tests/gpu/wave2_bench.sh (a benchmark, never an
isopipe dependency): random models made on the device, diffusers /
transformers timed on them, and the final table.

  wave2_bench.py wan-make DIR FRAMES
      a Wan2.1 T2V-1.3B-shaped random WanTransformer3DModel made on the device
      (every norm and modulation random, as tests/bench/wan/bench.py make),
      saved in bf16 to DIR/model; DIR/text.safetensors (prompt.0 [40, 4096],
      negative [20, 4096], float32) and DIR/noise.safetensors [16, T, 60, 104]
      for 480x832
  wave2_bench.py wan-ref DIR STEPS SHIFT GUIDANCE
      diffusers' UniPC + CFG loop (tests/bench/wan/bench.py run) on DIR/model
      in bf16 with SDPA, in a process of its own: one warm-up forward pair,
      then STEPS timed steps; DIR/ref_latents.safetensors and DIR/ref.json
  wave2_bench.py vae-make DIR T
      a full-size random AutoencoderKLWan (Wan2.1 config) made on the device,
      saved in bf16 to DIR/model; random latents DIR/latents.safetensors
      [16, T, 60, 104]
  wave2_bench.py vae-ref DIR
      AutoencoderKLWan.decode (bf16) timed after a one-latent-frame warm-up;
      DIR/ref.json
  wave2_bench.py umt5 DIR REPORT
      transformers' UMT5EncoderModel (bf16) on DIR (a model folder) over the
      token ids text-encode's REPORT lists: a warm-up forward, then one timed;
      DIR/../ref.json
  wave2_bench.py table RESULTS_DIR
      the table over RESULTS_DIR/*.json (what the shell and the commands above wrote)

WAVE2_BENCH_TINY=1: tiny shapes on the CPU (the plumbing check without a card).
ref.json: {"seconds": s (per step for wan), "first_s", "peak_alloc": bytes
(torch.cuda.max_memory_allocated; null on the CPU), "peak_reserved", ...}.
"""
import glob
import json
import os
import sys
import time

TINY = os.environ.get("WAVE2_BENCH_TINY") == "1"


def device():
    import torch
    if TINY or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def sync(dev):
    import torch
    if dev.type == "cuda":
        torch.cuda.synchronize()


def reset_peak(dev):
    import torch
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak(dev):
    import torch
    if dev.type != "cuda":
        return None, None
    return torch.cuda.max_memory_allocated(), torch.cuda.max_memory_reserved()


def versions():
    import torch
    v = {"torch": torch.__version__}
    for name in ("diffusers", "transformers"):
        try:
            v[name] = __import__(name).__version__
        except Exception:
            pass
    if torch.cuda.is_available() and not TINY:
        v["gpu"] = torch.cuda.get_device_name(0)
    return v


def randomize(model, seed, dev, kind):
    """Every weight random, in place, on the device (no float32 host copy)."""
    import torch
    g = torch.Generator(device=dev).manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g, device=dev, dtype=torch.float32)
            if kind == "vae":
                if name.endswith("gamma"):
                    r = 0.5 + torch.rand(p.shape, generator=g, device=dev)
                elif name.endswith("bias"):
                    r = 0.05 * r
                else:
                    r = r / p[0].numel() ** 0.5
            elif "norm" in name and name.endswith("weight"):
                r = 1 + 0.1 * r
            elif name.endswith("bias"):
                r = 0.05 * r
            elif "scale_shift_table" in name:
                r = 0.2 * r
            else:
                fan = p[0].numel() if p.ndim > 1 else p.shape[0]
                r = r / fan ** 0.5
            p.copy_(r.to(p.dtype))
            del r


def wan_make(d, frames):
    import torch
    from diffusers import WanTransformer3DModel
    from safetensors.torch import save_file
    dev = device()
    dt = torch.float32 if dev.type == "cpu" else torch.bfloat16
    if TINY:
        cfg = dict(num_attention_heads=2, attention_head_dim=32, text_dim=64, ffn_dim=128, num_layers=2)
        width, height, rows = 48, 32, (7, 5)
    else:  # Wan2.1 T2V-1.3B
        cfg = dict(num_attention_heads=12, attention_head_dim=128, text_dim=4096, ffn_dim=8960, num_layers=30)
        width, height, rows = 832, 480, (40, 20)
    os.makedirs(d, exist_ok=True)
    t0 = time.perf_counter()
    with torch.device(dev):
        m = WanTransformer3DModel(patch_size=(1, 2, 2), in_channels=16, out_channels=16, freq_dim=256,
                                  cross_attn_norm=True, **cfg)
    m = m.to(dt).eval()
    randomize(m, 7, dev, "wan")
    sync(dev)
    made = time.perf_counter() - t0
    m.to("cpu").save_pretrained(d + "/model", safe_serialization=True)
    g = torch.Generator().manual_seed(8)
    text = {"prompt.0": torch.randn(rows[0], cfg["text_dim"], generator=g),
            "negative": torch.randn(rows[1], cfg["text_dim"], generator=g)}
    save_file(text, d + "/text.safetensors")
    T, h, w = (frames - 1) // 4 + 1, height // 8, width // 8
    noise = torch.randn(16, T, h, w, generator=g)
    save_file({"noise": noise}, d + "/noise.safetensors")
    saved = time.perf_counter() - t0 - made
    nparams = sum(p.numel() for p in m.parameters())
    print("# wan: random DiT %.2f B parameters (%s) made on %s in %.1f s, saved in %.1f s; latents [16, %d, %d, %d] "
          "= %d tokens" % (nparams / 1e9, dt, dev, made, saved, T, h, w, T * h * w // 4), flush=True)


def wan_ref(d, steps, shift, guidance):
    """diffusers in a process of its own (loading from DIR/model as ours does), so that what nvidia-smi sees of it
    is the bf16 model and the loop, not the float32 construction of wan_make."""
    import torch
    from diffusers import UniPCMultistepScheduler, WanTransformer3DModel
    from safetensors.torch import load_file, save_file
    dev = device()
    dt = torch.float32 if dev.type == "cpu" else torch.bfloat16
    t0 = time.perf_counter()
    m = WanTransformer3DModel.from_pretrained(d + "/model", torch_dtype=dt).to(dev).eval()
    sync(dev)
    load = time.perf_counter() - t0
    nparams = sum(p.numel() for p in m.parameters())
    text = load_file(d + "/text.safetensors")
    noise = load_file(d + "/noise.safetensors")["noise"]
    T, h, w = noise.shape[1:]

    def pad(e):
        out = torch.zeros(1, 512, e.shape[1], device=dev, dtype=dt)
        out[0, : e.shape[0]] = e.to(dev, dt)
        return out
    cond, neg = pad(text["prompt.0"]), pad(text["negative"])
    lat = noise[None].to(dev)
    sched = UniPCMultistepScheduler(num_train_timesteps=1000, prediction_type="flow_prediction",
                                    use_flow_sigmas=True, flow_shift=shift)
    sched.set_timesteps(steps)
    reset_peak(dev)
    times = []
    with torch.no_grad():
        # warm-up: one forward pair at the first timestep, the scheduler untouched
        t0 = time.perf_counter()
        ts = sched.timesteps[0].expand(1).to(dev)
        m(hidden_states=lat.to(dt), timestep=ts, encoder_hidden_states=cond, return_dict=False)
        m(hidden_states=lat.to(dt), timestep=ts, encoder_hidden_states=neg, return_dict=False)
        sync(dev)
        warm = time.perf_counter() - t0
        for t in sched.timesteps:
            t0 = time.perf_counter()
            ts = t.expand(1).to(dev)
            vc = m(hidden_states=lat.to(dt), timestep=ts, encoder_hidden_states=cond, return_dict=False)[0]
            vu = m(hidden_states=lat.to(dt), timestep=ts, encoder_hidden_states=neg, return_dict=False)[0]
            v = (vu + guidance * (vc - vu)).float()
            lat = sched.step(v, t, lat, return_dict=False)[0]
            sync(dev)
            times.append(time.perf_counter() - t0)
    pa, pr = peak(dev)
    save_file({"latents": lat[0].float().cpu().contiguous()}, d + "/ref_latents.safetensors")
    attn = getattr(m.blocks[0].attn1, "processor", None)
    r = {"seconds": sum(times) / len(times), "steps_s": times, "first_s": warm, "peak_alloc": pa, "peak_reserved": pr,
         "dtype": str(dt), "device": str(dev), "attention": type(attn).__name__ if attn else None,
         "tokens": T * h * w // 4, "params": nparams, "load_s": load, **versions()}
    json.dump(r, open(d + "/ref.json", "w"), indent=1)
    print("# wan diffusers: %.3f s/step over %d steps (warm-up pair %.2f s), peak allocated %s" %
          (r["seconds"], steps, warm, mib(pa)), flush=True)


def vae_make(d, T):
    import torch
    from diffusers import AutoencoderKLWan
    from safetensors.torch import save_file
    dev = device()
    dt = torch.float32 if dev.type == "cpu" else torch.bfloat16
    base, h, w = (8, 4, 6) if TINY else (96, 60, 104)
    os.makedirs(d, exist_ok=True)
    t0 = time.perf_counter()
    with torch.device(dev):
        v = AutoencoderKLWan(base_dim=base, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2,
                             temperal_downsample=[False, True, True])
    v = v.to(dt).eval()
    randomize(v, 11, dev, "vae")
    sync(dev)
    v.to("cpu").save_pretrained(d + "/model", safe_serialization=True)
    g = torch.Generator().manual_seed(12)
    lat = torch.randn(16, T, h, w, generator=g)
    save_file({"latents": lat}, d + "/latents.safetensors")
    made = time.perf_counter() - t0
    nparams = sum(p.numel() for p in v.parameters())
    print("# vae: random AutoencoderKLWan %.1f M parameters (%s) made and saved in %.1f s; latents [16, %d, %d, %d] "
          "-> %d frames of %dx%d" % (nparams / 1e6, dt, made, T, h, w, 4 * (T - 1) + 1, 8 * w, 8 * h), flush=True)


def vae_ref(d):
    """AutoencoderKLWan.decode in a process of its own, loading DIR/model as ours does."""
    import torch
    from diffusers import AutoencoderKLWan
    from safetensors.torch import load_file
    dev = device()
    dt = torch.float32 if dev.type == "cpu" else torch.bfloat16
    t0 = time.perf_counter()
    v = AutoencoderKLWan.from_pretrained(d + "/model", torch_dtype=dt).to(dev).eval()
    sync(dev)
    load = time.perf_counter() - t0
    nparams = sum(p.numel() for p in v.parameters())
    lat = load_file(d + "/latents.safetensors")["latents"]
    mean = torch.tensor(v.config.latents_mean).view(1, -1, 1, 1, 1)
    std = torch.tensor(v.config.latents_std).view(1, -1, 1, 1, 1)
    z = (lat[None] * std + mean).to(dev, dt)
    with torch.no_grad():
        t0 = time.perf_counter()
        v.decode(z[:, :, :1])   # warm-up: one latent frame at the same size
        sync(dev)
        warm = time.perf_counter() - t0
        reset_peak(dev)
        t0 = time.perf_counter()
        out = v.decode(z).sample
        sync(dev)
        s = time.perf_counter() - t0
    pa, pr = peak(dev)
    r = {"seconds": s, "first_s": warm, "peak_alloc": pa, "peak_reserved": pr, "dtype": str(dt), "device": str(dev),
         "frames": int(out.shape[2]), "params": nparams, "load_s": load, **versions()}
    json.dump(r, open(d + "/ref.json", "w"), indent=1)
    print("# vae diffusers: decode %.3f s (%d frames; 1-latent-frame warm-up %.2f s), peak allocated %s" %
          (s, out.shape[2], warm, mib(pa)), flush=True)


def umt5(d, report):
    import torch
    from transformers import UMT5EncoderModel
    dev = device()
    dt = torch.float32 if dev.type == "cpu" else torch.bfloat16
    ids = json.load(open(report))["prompts"][0]["ids"]
    t0 = time.perf_counter()
    m = UMT5EncoderModel.from_pretrained(d, dtype=dt).to(dev).eval()
    sync(dev)
    load = time.perf_counter() - t0
    x = torch.tensor([ids], device=dev)
    reset_peak(dev)
    with torch.no_grad():
        t0 = time.perf_counter()
        m(input_ids=x)
        sync(dev)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        m(input_ids=x)
        sync(dev)
        s = time.perf_counter() - t0
    pa, pr = peak(dev)
    r = {"seconds": s, "first_s": first, "load_s": load, "peak_alloc": pa, "peak_reserved": pr, "dtype": str(dt),
         "device": str(dev), "tokens": len(ids), "layers": m.config.num_layers, **versions()}
    json.dump(r, open(os.path.join(os.path.dirname(os.path.abspath(d)), "ref.json"), "w"), indent=1)
    print("# umt5 transformers: %d tokens, %d layers: %.4f s (first forward %.4f s, load %.1f s), peak allocated %s" %
          (len(ids), m.config.num_layers, s, first, load, mib(pa)), flush=True)


def mib(b):
    return "-" if b is None else "%.0f MiB" % (b / 2**20)


def fmt(x, f="%.3f"):
    return "-" if x is None else f % x


def ratio(a, b):
    return "-" if a is None or b in (None, 0) else "%.2f" % (a / b)


def load_st(path):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "helpers"))
    from st_np import load
    return load(path, only=("F32",))


def table(res):
    """res/<component>.ref.json, res/<component>.<mode>.json (the tool's report), res/<component>.<mode>.run
    (wall seconds, exit status, nvidia-smi peak) -> the table."""
    def get(p):
        try:
            return json.load(open(p))
        except Exception:
            return None
    rows = []
    notes = []
    comps = [c for c in os.environ.get("WAVE2_BENCH_ONLY", "vae umt5 wan").split() if c in ("wan", "vae", "umt5")]
    for comp in sorted(comps, key=("wan", "vae", "umt5").index):
        ref = get(os.path.join(res, comp + ".ref.json"))
        refsmi = get(os.path.join(res, comp + ".ref.run")) or {}
        for mode in ("beefy", "lightweight"):
            run = get(os.path.join(res, "%s.%s.run" % (comp, mode)))
            rep = get(os.path.join(res, "%s.%s.json" % (comp, mode)))
            ours = plan = pv = None
            extra = ""
            # the plan: the report's memory.plan, else what --plan printed before the run
            pj = (rep or {}).get("memory", {}).get("plan") or get(os.path.join(res, "%s.%s.plan.json" % (comp, mode)))
            try:
                pm = pj["modes"][mode]
                plan = pm["vram_peak"]
                blk = (pj.get("blocks") or {}).get("block_bytes")
                notes.append("%s %s plan: weights %s, activations %s, pinned host %s, host RSS %s%s" % (
                    comp, mode, mib(pm.get("weights")), mib(pm.get("activations")), mib(pm.get("pinned_host")),
                    mib(pm.get("host_rss")), ", largest block %s (2 blocks %s)" % (mib(blk), mib(2 * blk))
                    if blk else ""))
            except (KeyError, TypeError):
                pass
            if rep:
                mem = rep.get("memory", {})
                pv = mem.get("peak_vram")
                tm = rep.get("timing") or rep.get("encode") or {}
                if comp == "wan":
                    st = tm.get("steps_s") or []
                    use = st[1:] if len(st) > 1 else st
                    ours = sum(use) / len(use) if use else None
                    extra = "load %.1f s, steps %s" % (tm.get("load_s", 0), " ".join("%.2f" % x for x in st))
                elif comp == "vae":
                    ours = tm.get("decode_s")
                else:
                    ours = tm.get("seconds")
                fb = mem.get("nn", {}).get("fallback") if isinstance(mem.get("nn"), dict) else None
                back = (mem.get("nn") or {}).get("backend") if isinstance(mem.get("nn"), dict) else \
                    (rep.get("encode") or {}).get("backend")
                notes.append("%s %s: wall %s s (exit %s), %s; backend %s; weights %s%s; vram_source %s" % (
                    comp, mode, fmt(run.get("wall") if run else None, "%.1f"), run.get("rc") if run else "-",
                    extra or "-", back, (mem.get("nn") or {}).get("weights") if isinstance(mem.get("nn"), dict)
                    else mem.get("weights"), ", FALLBACK " + fb if fb else "", mem.get("vram_source")))
            elif run:
                notes.append("%s %s: no report (exit %s after %s s)" % (comp, mode, run.get("rc"),
                                                                        fmt(run.get("wall"), "%.1f")))
            rs = ref.get("seconds") if ref else None
            rp = ref.get("peak_alloc") if ref else None
            rows.append((comp, mode, ours, rs, pv, plan, rp, (run or {}).get("smi_peak"), refsmi.get("smi_peak")))
        if len(rows) >= 2 and rows[-2][:2] == (comp, "beefy") and rows[-1][:2] == (comp, "lightweight"):
            notes.append("%s lightweight / beefy: time %s, peak VRAM %s" % (
                comp, ratio(rows[-1][2], rows[-2][2]), ratio(rows[-1][4], rows[-2][4])))
        if ref:
            notes.append("%s reference: process wall %s s (python start, imports, load, warm-up); %s" % (
                comp, fmt(refsmi.get("wall"), "%.1f"), ", ".join("%s=%s" % (k, ref[k]) for k in (
                    "device", "dtype", "attention", "tokens", "frames", "layers", "load_s", "first_s",
                    "peak_reserved", "torch", "diffusers", "transformers", "gpu") if ref.get(k) is not None)))
    unit = {"wan": "s/step", "vae": "s decode", "umt5": "s forward"}
    print()
    print("| component | mode | ours | reference | ours/ref | ours peak VRAM | plan | ref peak VRAM (allocated) "
          "| ours/ref | nvidia-smi ours | nvidia-smi ref | ours/ref |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for comp, mode, o, r, pv, plan, rp, so, sr in rows:
        print("| %s (%s) | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            comp, unit[comp], mode, fmt(o), fmt(r), ratio(o, r), mib(pv), mib(plan), mib(rp), ratio(pv, rp),
            mib(so), mib(sr), ratio(so, sr)))
    print()
    for n in notes:
        print("# " + n)
    # latents of ours against diffusers' (bf16 both: loosely close at best; printed, not asserted)
    refl = os.path.join(res, "wan.ref_latents.safetensors")
    ref_dtype = (get(os.path.join(res, "wan.ref.json")) or {}).get("dtype")
    if os.path.exists(refl):
        import numpy as np
        b = load_st(refl)["latents"]
        for mode in ("beefy", "lightweight"):
            p = os.path.join(res, "wan.%s.latents.safetensors" % mode)
            if os.path.exists(p):
                a = load_st(p)["latents"]
                if a.shape != b.shape:
                    print("# wan %s latents: shape %s, diffusers' %s" % (mode, a.shape, b.shape))
                else:
                    print("# wan %s latents vs diffusers: max|a-b|/max|b| = %.3g (ours ISOPIPE_NN_PREC=%s, "
                          "diffusers %s; not asserted)" % (mode, float(np.abs(a - b).max() / np.abs(b).max()),
                                                           os.environ.get("ISOPIPE_NN_PREC", "f32"), ref_dtype))
    print("# ours: the tool's own report (wan: mean of steps_s after the first, each step one CFG pair; vae: "
          "timing.decode_s; umt5: encode.seconds), one run per process as users run it; reference: after a warm-up "
          "in the same process. Peak VRAM: ours memory.peak_vram (vram_source says how it was read; NVML's process "
          "figure includes the ~520 MiB CUDA context), reference torch.cuda.max_memory_allocated (no context, no "
          "allocator slack): their ratio favours the reference; nvidia-smi: device memory.used max (sampled every "
          "200 ms) during the process minus the idle baseline, context included on both sides: the like-for-like "
          "pair. Plan: memory.plan.modes.<mode>.vram_peak (no CUDA context).")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "wan-make":
        wan_make(sys.argv[2], int(sys.argv[3]))
    elif cmd == "wan-ref":
        wan_ref(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
    elif cmd == "vae-make":
        vae_make(sys.argv[2], int(sys.argv[3]))
    elif cmd == "vae-ref":
        vae_ref(sys.argv[2])
    elif cmd == "umt5":
        umt5(sys.argv[2], sys.argv[3])
    elif cmd == "table":
        table(sys.argv[2])
    else:
        sys.exit("usage: see the docstring")
