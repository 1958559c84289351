#!/usr/bin/env python3
"""How much llama.cpp agrees with itself: the fixture of the forward test was
made with n_batch=1024 (batched kernels); this re-runs the same sequences with
n_batch=1 (one token per decode, the vector kernels) and prints the top-1
agreement and mean |logit difference| over the fixture's top-5 entries.
That is the noise floor any second implementation meets on this model (see
tests/unit/test_prompt_expand_forward.c). Measured 2026-11-22 on sequences 0-1:
94.81% top-1 agreement, mean difference 0.135.

  python3 tests/ref/llm_self_agreement.py MODEL.gguf FIXTURE.json [N_SEQUENCES]
"""
import json
import sys

import numpy as np
from llama_cpp import Llama


def main():
    model, fixture = sys.argv[1], sys.argv[2]
    nseq = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    doc = json.load(open(fixture))
    llm = Llama(model_path=model, n_ctx=1024, n_batch=1, n_ubatch=1, n_threads=2, logits_all=True, verbose=False)
    agree = total = 0
    diffs = []
    for s in doc["sequences"][:nseq]:
        toks = s["tokens"]
        llm.reset()
        llm.eval(toks)
        lg = np.array(llm.scores[: len(toks)])
        t5, l5 = np.array(s["top5"]), np.array(s["top5_logits"])
        diffs.append(np.abs(np.take_along_axis(lg, t5, 1) - l5).ravel())
        agree += int((lg.argmax(1) == t5[:, 0]).sum())
        total += len(toks)
    print("llama.cpp n_batch=1 vs the fixture (n_batch=1024): top-1 agreement %.4f over %d positions, "
          "mean |logit difference| %.4f" % (agree / total, total, np.concatenate(diffs).mean()))


if __name__ == "__main__":
    main()
