#!/usr/bin/env python3
"""llama.cpp's side of tests/bench/llm/run.sh (through llama-cpp-python):
the same GGUF, thread count, prompt token pattern and greedy generation as
llm_bench.c. Prints: pp_tps=<best of REPS> tg_tps=<best of REPS>

  python3 llama_cpp_bench.py MODEL THREADS N_PROMPT N_GEN REPS
"""
import os
import sys
import time

import numpy as np
import llama_cpp
import llama_cpp.llama

# llama.cpp's extra buffer types (the repacked layouts of its CPU backend, and
# AMX where the build has it) are on, as in llama.cpp's own default. A build
# with AMX dies with SIGSEGV in ggml_backend_amx_mul_mat on every multi-token
# batch on the Intel Xeon of our 2026-12 rows (llama-cpp-python 0.3.36), so
# the reference there is built without AMX (docs/prompt-expand.md gives the
# CMAKE_ARGS); LLAMA_NO_EXTRA_BUFTS=1 switches them all off instead.
if os.environ.get("LLAMA_NO_EXTRA_BUFTS") == "1":
    _default_params = llama_cpp.llama_model_default_params

    def _no_extra_bufts():
        p = _default_params()
        p.use_extra_bufts = False
        return p

    llama_cpp.llama_model_default_params = _no_extra_bufts
    llama_cpp.llama.llama_cpp.llama_model_default_params = _no_extra_bufts

from llama_cpp import Llama  # noqa: E402


def main():
    model, threads, np_, ng, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    llm = Llama(model_path=model, n_ctx=np_ + ng + 8, n_batch=512, n_threads=threads, n_threads_batch=threads,
                verbose=False)
    nv = llm.n_vocab()
    ctx = llm._ctx.ctx
    prompt = [(i * 7919 + 13) % nv for i in range(np_)]
    best_pp = best_tg = 0.0
    for _ in range(reps):
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(prompt)
        t1 = time.perf_counter()
        for _ in range(ng):
            # greedy on the last position's logits (llm.scores holds them only with logits_all)
            tok = int(np.argmax(np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, -1), shape=(nv,))))
            llm.eval([tok])
        t2 = time.perf_counter()
        best_pp = max(best_pp, np_ / (t1 - t0))
        best_tg = max(best_tg, ng / (t2 - t1))
    print("pp_tps=%.1f tg_tps=%.1f" % (best_pp, best_tg))


if __name__ == "__main__":
    main()
