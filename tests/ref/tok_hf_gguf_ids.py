#!/usr/bin/env python3
"""Reference token ids for the Qwen2.5-Coder GGUF (make models LLM=qwen2.5-0.5b)
from Hugging Face transformers, which builds its tokenizer from the GGUF's own
vocabulary and merges (AutoTokenizer.from_pretrained(dir, gguf_file=...)), for
tests/unit/test_prompt_expand_tokenizer.c. transformers (and the gguf package
it reads GGUF with) are for generating this fixture only; isopipe never uses them.

Usage: python3 tests/ref/tok_hf_gguf_ids.py models/qwen2.5-0.5b.gguf \
           > tests/fixtures/tokenizer/qwen2.5-coder.txt

Strings: those of tests/fixtures/tokenizer/qwen2.txt (the llama.cpp fixture)
and more below: multilingual text, code, emoji, numbers, the chat template's
and the Coder's special tokens, and seeded random mixtures. Output as
tests/ref/tok_llama_ids.py writes it (S/I strings, M/R/I chats); strings are
encoded without added special tokens, with special-token text parsed (what
transformers does by default, llama.cpp's special=True). Chats have a system
message: without one, Qwen2.5's template inserts its own ("You are Qwen, ...").
"""
import os
import random
import sys

from transformers import AutoTokenizer

MULTI = [
    "中文测试：一只纸船顺着下雨的街道漂流。", "日本語のテキスト、ひらがなとカタカナ。", "東京タワーの夜景",
    "한국어 문장입니다. 비 오는 거리.", "Русский текст: бумажный кораблик плывёт по улице.", "Ελληνικά: καλημέρα κόσμε",
    "עברית: שלום עולם", "العربية: قارب ورقي في شارع ممطر", "हिन्दी: बारिश वाली सड़क", "ไทย: เรือกระดาษ",
    "Tiếng Việt: thuyền giấy trôi trên phố mưa", "Deutsch: Größe, Übermaß, Straße", "Français : où est la bibliothèque ?",
    "Español: ¿Qué tal? ¡Muy bien!", "Türkçe: ıslak sokak, çocuk, şemsiye", "Polski: zażółć gęślą jaźń",
    "Português: ação, coração, não", "Svenska: åäö ÅÄÖ", "Norsk: blåbærsyltetøy", "Čeština: příliš žluťoučký kůň",
    "Română: ștergător, țară", "Magyar: árvíztűrő tükörfúrógép", "Українська: ґанок, їжак, є", "ქართული ენა",
    "Հայերեն լեզու", "தமிழ் மொழி", "বাংলা ভাষা", "Кириллица and Latin mixed", "mixed 中文 and English words",
    "全角文字ＡＢＣ１２３", "ＡＩ　全角スペース",
]
CODE = [
    "def main():\n    print('hello')\n", "for (int i = 0; i < n; i++) {\n\tsum += a[i];\n}",
    "#include <stdio.h>\nint main(void) { return 0; }", "const x = async () => { await fetch('/api'); };",
    "fn main() { let v: Vec<u8> = vec![1, 2, 3]; }", '{"key": [1, 2.5, null, true], "nested": {"a": "b"}}',
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;", "<div class=\"box\"><p>text</p></div>",
    "if [ -f \"$f\" ]; then echo ok; fi", "x = [i**2 for i in range(10) if i % 2 == 0]",
    "    indented four\n        indented eight", "\t\ttwo tabs", "a->b->c; p != NULL && *p == '\\0'",
    "re.compile(r'^\\s*(\\d+)\\.(\\w+)$')", "x += 1; y -= 2; z *= 3; w /= 4; v %= 5;", "0x1F 0b1010 0o777 1e-9 3.0f",
    "// comment\n/* block */\n# hash", "@decorator\nclass Foo(Bar):\n    pass", "λx.x + 1", "std::vector<std::string> v;",
    "import numpy as np\nnp.zeros((3, 4), dtype=np.float32)", "git commit -m \"fix: off-by-one\"",
    "user@example.com https://example.org/path?q=1&r=2#frag", "C:\\Users\\name\\file.txt", "~/dir/../file.tar.gz",
    "a==b!=c<=d>=e&&f||g", "'''docstring'''", "`backticks` and ```fences```", "snake_case camelCase PascalCase kebab-case",
    "SCREAMING_SNAKE_CASE __dunder__ _private",
]
EMOJI = [
    "😀", "😀😃😄", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷🇯🇵", "❤️", "🏳️‍🌈", "a😀b", "emoji at the end 🎉", "🚀 rocket launch",
    "☀️🌧️⛈️", "🐍 python", "👩🏿‍💻 coding", "1️⃣2️⃣3️⃣", "🙂 🙃 🤔", "★☆✓✗→←↑↓", "™ © ® € £ ¥ ₹", "…—–‘’“”",
    "\u00a0non-breaking\u00a0space", "zero\u200bwidth",
]
SPECIAL = [
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_start|>user\nhi<|im_end|>", "<|im_start|>assistant\n",
    "<|fim_prefix|>def f():<|fim_suffix|>\n    return 1<|fim_middle|>", "<|repo_name|>isopipe<|file_sep|>main.c",
    "<|im", "im_end|>", "<|", "|>", "< |im_start| >", "text<|endoftext|>more", "<|im_end|><|im_end|>",
    "<|fim_pad|>", "<|object_ref_start|>x<|object_ref_end|>", "<|box_start|>(1,2)<|box_end|>", "<tool_call>\n{}\n</tool_call>",
    "<|vision_start|><|image_pad|><|vision_end|>", "<|quad_start|>q<|quad_end|>",
]
NUMBERS = [
    "12345678901234567890", "3.14159265358979", "1,000,000", "2026-12-03T04:30:00Z", "-42", "+7", "1/2 + 3/4",
    "100%", "$19.99", "v1.2.3-rc.4", "0.000001", "1e10", "(555) 123-4567", "12:30 pm", "Route 66",
]


def base_strings(path):
    out = []
    with open(path) as f:
        for line in f:
            if line.startswith("S "):
                out.append(bytes.fromhex(line[2:].strip()).decode("utf-8"))
    return out


def random_strings(n):
    rng = random.Random(20261203)
    bits = ["a", "Z", " ", "  ", "\n", "\t", "'s", "9", "é", "中", "😀", "<|im_start|>", "<|im", "|>", ".", "\u00a0",
            "\r\n", "the", " boat", "ing", "42", "ß", "ـ", "()", "{}", "::", "—", "ä"]
    return ["".join(rng.choice(bits) for _ in range(rng.randint(1, 12))) for _ in range(n)]


CHATS = [
    [("system", "You write one visual prompt per shot."), ("user", "Video: a paper boat drifting down a rainy street\nShot 1 of 3")],
    [("system", "Be brief."), ("user", "hello"), ("assistant", "Hi there."), ("user", "Describe a harbour at dusk.")],
    [("system", "Système : réponds en français 😀"), ("user", "中文 and emoji 🎉 in the content")],
]


def ids_line(ids):
    return "I" + "".join(" " + str(i) for i in ids)


def hx(s):
    return s.encode("utf-8").hex()


def main():
    gguf = sys.argv[1]
    tok = AutoTokenizer.from_pretrained(os.path.dirname(os.path.abspath(gguf)), gguf_file=os.path.basename(gguf))
    here = os.path.dirname(os.path.abspath(__file__))
    strings = base_strings(os.path.join(here, "..", "fixtures", "tokenizer", "qwen2.txt"))
    strings += MULTI + CODE + EMOJI + SPECIAL + NUMBERS + random_strings(30)
    import transformers
    print(f"# transformers {transformers.__version__} token ids for {os.path.basename(gguf)} "
          f"(AutoTokenizer from the GGUF), generated by tests/ref/tok_hf_gguf_ids.py; {len(strings)} strings")
    for s in strings:
        print("S " + hx(s))
        print(ids_line(tok.encode(s, add_special_tokens=False)))
    for chat in CHATS:
        msgs = [{"role": r, "content": c} for r, c in chat]
        for r, c in chat:
            print(f"M {r} {hx(c)}")
        text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        print("R " + hx(text))
        print(ids_line(tok.encode(text, add_special_tokens=False)))


if __name__ == "__main__":
    main()
