#!/usr/bin/env python3
"""Reference token ids for text-encode's SentencePiece tokenizer
(tests/unit/test_text_encode_spm.c).

1. A multilingual training text is gathered from the gettext catalogues
   (/usr/share/locale/<lang>/LC_MESSAGES/*.mo) of a Debian system: the
   translated messages of 16 languages in 12 scripts. It is not committed.
2. Unigram models are trained with the `sentencepiece` trainer
   (normalization nmt_nfkc):
     uni_bf.model    2000 pieces, byte_fallback, character_coverage 0.98
     uni_nobf.model  1500 pieces, no byte fallback, user_defined_symbols
                     "<sep>" and "[IMG]", character_coverage 0.97 (rare
                     characters become <unk>)
     uni_raw.model   1400 pieces, byte_fallback, normalization "identity" (no
                     charsmap), add_dummy_prefix and remove_extra_whitespaces off
3. For uni_nobf and uni_raw, `transformers` exports a tokenizer.json (T5TokenizerFast
   built from the spiece.model through convert_slow_tokenizer, 100 extra ids).
4. uni_raw.gguf: uni_raw.model's tokenizer as GGUF metadata (the tokenizer.ggml.*
   keys llama.cpp's converter writes for T5), to be run as the .model is.
5. Ids: for each test string, sentencepiece's ids + [eos] ("S"/"P" records)
   and the `tokenizers` library's ids running that tokenizer.json ("T").

Output directory (default tests/fixtures/spm/): <name>.model,
<name>.tokenizer.json, <name>.ids. Records of .ids, strings hex-encoded UTF-8:
  S <hex>            a test string
  P <id> <id> ...    sentencepiece (the .model), </s> appended
  T <id> <id> ...    tokenizers running the .tokenizer.json (its post-processor
                     appends </s>)

Usage: /tmp/ref/bin/python tests/ref/spm_ref.py [OUTDIR]
"""
import gettext
import glob
import io
import os
import random
import sys

import sentencepiece as spm
import tokenizers
import transformers

LANGS = ["de", "fr", "es", "pl", "vi", "ru", "uk", "el", "ar", "he", "hi", "th",
         "zh_CN", "ja", "ko", "ka"]


def corpus_lines():
    lines = []
    for lang in LANGS:
        got = []
        for mo in sorted(glob.glob("/usr/share/locale/%s/LC_MESSAGES/*.mo" % lang)):
            try:
                with open(mo, "rb") as f:
                    cat = gettext.GNUTranslations(f)
            except Exception:
                continue
            for k in sorted(cat._catalog, key=lambda k: str(k)):
                v = cat._catalog[k]
                if not isinstance(v, str) or len(v) < 8 or len(v) > 300 or "%" in v:
                    continue
                for ln in v.split("\n"):
                    ln = ln.strip()
                    if len(ln) >= 8:
                        got.append(ln)
            if len(got) > 1500:
                break
        lines.extend(got[:1500])
    return lines


HAND = [
    "", " ", "   ", "\t", "\n", "a", "A", "hello", "Hello world", "hello  world", "  leading spaces",
    "trailing spaces   ", "many          spaces          between", "tabs\tand\t\ttabs", "line one\nline two",
    "windows\r\nnewlines\r\n", " \n \n ", "a b c d e f g", "x\u00a0nbsp\u2003emspace\u3000ideographic",
    "soft\u00adhyphen and zero\u200bwidth joiner\u200d here",
    "café crème brûlée", "naïve façade, jalapeño, Ångström", "combining e\u0301 vs é and a\u0308\u0301",
    "Ａ\u0301 full-width with a mark", "ｶﾞ ﾊﾟ half-width kana with marks",
    "Straße und Übergröße", "Ελληνικά γράμματα και τόνοι ΆΈΉ", "Русский текст, привет! Ёё",
    "Українська мова: їжак, ґанок", "日本語のテキストです。", "中文字符测试，你好世界", "한국어 문장입니다",
    "עברית: שלום עולם", "مرحبا بالعالم", "ﻣﺮﺣﺒﺎ presentation forms ﷺ ﷽", "हिन्दी पाठ क्षत्रिय",
    "ภาษาไทยง่ายนิดเดียว", "ქართული ენა", "emoji 😀🎉👍🏽 and flags 🇫🇷🇯🇵", "family 👨‍👩‍👧‍👦 zwj",
    "keycap 1️⃣ #️⃣ and ❤️ vs ❤", "full-width ＡＢＣ ａｂｃ １２３ ！？", "ligatures ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ Ĳ ǆ",
    "roman Ⅻ ⅷ, super x² x³, sub H₂O, fraction ½ ¾ ⅞", "circled ① ⑳ ㊿ Ⓐ ⓐ", "squared ㎏ ㎞ ㏄ ㍿",
    "control\u0001chars\u0007bell\u001bescape\u007fdel", "\u0085next line\u2028line sep\u2029para sep",
    "bidi \u202eoverride\u202c and \u200fmarks\u200e", "variation selector \ufe0f\ufe0e ︀",
    "private use \ue000\uf8ff and \U000f0000", "rare CJK 𠀀𠀁 𪜀 and Tangut 𗀀", "math 𝐀𝐁𝐂 𝑎𝑏𝑐 𝔸𝔹",
    "$100 + 50% = €150 or £120 ¥", "a—b–c … “quotes” ‘single’ «guillemets» „low“",
    "<sep>user defined<sep>[IMG] symbols", "[IMG][IMG]", "</s> and <unk> and <pad> as text",
    "<0x41> byte piece as text", "<extra_id_0> an extra id", "http://example.org/?q=1&r=2",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "!!!!!!!!!!!!!!!!!!!!", "1234567890 3.14159",
    "int main(void) { return 0; }", "ℌℍ ℕ ℙ ™ № ℡", "ｈｅｌｌｏ　ｗｏｒｌｄ", "ﾃｽﾄ", "ǅungla Ǆ",
    "\u1100\u1161\u11a8 jamo", "한\u11a8 mixed jamo", "ä\u0323 order of marks a\u0323\u0308",
    "ᄀᄀᄀ각ᆨᆨ", "\U0001f469\u200d\U0001f52c scientist", "🏳️‍🌈 flag", "ab\u0300\u0301\u0302\u0303\u0304cd",
    "\u0915\u094d\u0937 conjunct", "ก\u0e33 sara am", "e\u0301\u0301", "Å Å Å", "Ω Ω", "ﬀ", "㍻ 令和 ㋿",
    "❶❷❸ ⑴⑵", "ℓ µ Å ℃ ℉", "ﾟ ﾞ ゛ ゜", "\u3099\u309a lone voiced marks", "x" * 700,
    " ".join(["word"] * 600), "a\u0000b",
]


def test_strings(lines):
    rnd = random.Random(16)
    out = list(HAND)
    # held-out-ish sentences: every language's lines, sampled, plus mixed pairs
    by_script = [lines[i::7] for i in range(7)]
    pool = [l for l in lines]
    rnd.shuffle(pool)
    out.extend(pool[:160])
    for i in range(30):
        a, b = rnd.choice(pool), rnd.choice(pool)
        out.append(a[: len(a) // 2] + "  " + b[len(b) // 3:])
    del by_script
    return out


def train(name, outdir, text, **kw):
    buf = io.BytesIO()
    kw.setdefault("normalization_rule_name", "nmt_nfkc")
    spm.SentencePieceTrainer.train(sentence_iterator=iter(text), model_writer=buf, model_type="unigram",
                                   num_threads=1, seed_sentencepiece_size=200000, minloglevel=2, **kw)
    path = os.path.join(outdir, name + ".model")
    with open(path, "wb") as f:
        f.write(buf.getvalue())
    return path


def export_json(model_path, out_json, sp, byte_fallback, legacy):
    """tokenizer.json as transformers' T5Converter writes it (the converter
    behind T5TokenizerFast): Precompiled + Strip(right) + Replace(" {2,}",
    "▁") normaliser, Metaspace pre-tokenizer (prepend "always" when
    legacy, else "first"), vocabulary + 100 <extra_id_N>, "$A </s>"
    post-processor; </s>, <unk>, <pad> and the extra ids as special added
    tokens, as in the files published with T5/umT5. byte_fallback: the
    Unigram model's flag (T5Converter leaves it off; on for uni_raw)."""
    from tokenizers import AddedToken
    from transformers.convert_slow_tokenizer import T5Converter

    class Slow:
        pass
    slow = Slow()
    slow.vocab_file = model_path
    slow._extra_ids = 100
    slow.legacy = legacy
    slow.add_prefix_space = True
    slow.convert_tokens_to_ids = lambda t: sp.piece_to_id(t)

    class Conv(T5Converter):
        handle_byte_fallback = byte_fallback
    tok = Conv(slow).converted()
    special = ["</s>", "<unk>", "<pad>"] + ["<extra_id_%d>" % i for i in range(100)]
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in special])
    tok.save(out_json, pretty=False)


def write_gguf(model_path, out):
    """the tokenizer of a .model as llama.cpp's converter stores a T5 one in
    GGUF metadata (tokenizer.ggml.*; no tensors), written by hand (GGUF v3)"""
    import struct
    from sentencepiece import sentencepiece_model_pb2 as pb
    m = pb.ModelProto()
    m.ParseFromString(open(model_path, "rb").read())

    def s(x):
        b = x.encode("utf-8") if isinstance(x, str) else x
        return struct.pack("<Q", len(b)) + b
    kv = []

    def add(key, typ, payload):
        kv.append(s(key) + struct.pack("<I", typ) + payload)
    add("general.architecture", 8, s("t5encoder"))
    add("tokenizer.ggml.model", 8, s("t5"))
    add("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, len(m.pieces)) + b"".join(s(p.piece) for p in m.pieces))
    add("tokenizer.ggml.scores", 9, struct.pack("<IQ", 6, len(m.pieces)) + b"".join(struct.pack("<f", p.score) for p in m.pieces))
    add("tokenizer.ggml.token_type", 9, struct.pack("<IQ", 5, len(m.pieces)) + b"".join(struct.pack("<i", p.type) for p in m.pieces))
    add("tokenizer.ggml.add_space_prefix", 7, struct.pack("<?", m.normalizer_spec.add_dummy_prefix))
    add("tokenizer.ggml.remove_extra_whitespaces", 7, struct.pack("<?", m.normalizer_spec.remove_extra_whitespaces))
    cm = m.normalizer_spec.precompiled_charsmap
    if cm:
        add("tokenizer.ggml.precompiled_charsmap", 9, struct.pack("<IQ", 0, len(cm)) + cm)
    add("tokenizer.ggml.eos_token_id", 4, struct.pack("<I", m.trainer_spec.eos_id))
    add("tokenizer.ggml.unknown_token_id", 4, struct.pack("<I", m.trainer_spec.unk_id))
    with open(out, "wb") as f:
        f.write(b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv)) + b"".join(kv))


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/spm"
    os.makedirs(outdir, exist_ok=True)
    lines = corpus_lines()
    strings = test_strings(lines)
    models = [
        ("uni_bf", dict(vocab_size=2000, byte_fallback=True, character_coverage=0.98)),
        ("uni_nobf", dict(vocab_size=1500, byte_fallback=False, character_coverage=0.98,
                          user_defined_symbols=["<sep>", "[IMG]"])),
        ("uni_raw", dict(vocab_size=1400, byte_fallback=True, character_coverage=0.98,
                         normalization_rule_name="identity", add_dummy_prefix=False,
                         remove_extra_whitespaces=False)),
    ]
    for name, kw in models:
        path = train(name, outdir, lines, pad_id=0, eos_id=1, unk_id=2, bos_id=-1, **kw)
        sp = spm.SentencePieceProcessor(model_file=path)
        tk = None
        if name != "uni_bf":   # one nmt_nfkc charsmap in JSON is enough (the fixture size)
            js = os.path.join(outdir, name + ".tokenizer.json")
            export_json(path, js, sp, byte_fallback=(name == "uni_raw"), legacy=(name != "uni_raw"))
            tk = tokenizers.Tokenizer.from_file(js)
        with open(os.path.join(outdir, name + ".ids"), "w") as f:
            f.write("# %s: sentencepiece %s ids (+ </s>) and tokenizers %s ids of %s.tokenizer.json "
                    "(exported by transformers %s); generated by tests/ref/spm_ref.py\n"
                    % (name, spm.__version__, tokenizers.__version__, name, transformers.__version__))
            for s in strings:
                p = sp.encode(s) + [sp.eos_id()]
                f.write("S %s\nP %s\n" % (s.encode("utf-8").hex(), " ".join(map(str, p))))
                if tk:
                    f.write("T %s\n" % " ".join(map(str, tk.encode(s).ids)))
        if name == "uni_raw":
            write_gguf(path, os.path.join(outdir, name + ".gguf"))
        print(name, sp.get_piece_size(), "pieces,", len(strings), "strings", file=sys.stderr)


if __name__ == "__main__":
    main()
