#!/usr/bin/env python3
"""Compare a tokenizer fixture's ids (tests/fixtures/tokenizer/*.txt, S/I
records; e.g. qwen2.5-coder.txt, made with transformers) with llama.cpp's
ids for the same strings and the same GGUF (llama-cpp-python, which builds
llama.cpp from source: reference data only, never an isopipe dependency).
Strings are tokenized as the fixture was: no added BOS, special-token text
parsed. Since test_prompt_expand_tokenizer checks our ids equal the
fixture's, "identical" here means ours equal llama.cpp's too.

  python3 tests/ref/tok_fixture_vs_llama.py MODEL.gguf FIXTURE.txt
"""
import sys

import llama_cpp


def main():
    model, fixture = sys.argv[1], sys.argv[2]
    llm = llama_cpp.Llama(model_path=model, vocab_only=True, verbose=False)
    same = total = 0
    s = None
    for line in open(fixture, encoding="ascii"):
        f = line.split()
        if not f or f[0].startswith("#"):
            continue
        if f[0] in ("S", "R"):   # a string, or a rendered chat (its text)
            s = bytes.fromhex(f[1]) if len(f) > 1 else b""
        elif f[0] == "I" and s is not None:
            want = [int(x) for x in f[1:]]
            got = llm.tokenize(s, add_bos=False, special=True)
            total += 1
            if got == want:
                same += 1
            else:
                print("differs: %r\n  fixture   %s\n  llama.cpp %s" % (s.decode("utf-8", "replace"), want, got))
            s = None
        else:
            s = None     # chats (M/R records) are not compared here
    print("llama.cpp %s: %d/%d strings (and rendered chats) give the fixture's ids" % (llama_cpp.__version__, same, total))
    sys.exit(0 if same == total else 1)


if __name__ == "__main__":
    main()
