#!/usr/bin/env python3
"""Reference logits for the LLM engine's forward-pass test, from llama.cpp.

Runs llama.cpp (through the PyPI package llama-cpp-python) teacher-forced over
several varied texts with the same GGUF file and writes a compact fixture:
for every sequence its token ids, and for every position the reference's top-5
token ids and logits. tests/unit/test_prompt_expand_forward.c feeds the same
token ids to our engine and compares (top-1 agreement, logit differences).

This is a test-data generator only: llama.cpp is never a dependency of isopipe.

  pip install llama-cpp-python numpy
  python3 tests/ref/llm_forward_ref.py models/SmolLM2-135M-Instruct.Q4_1.gguf \
      tests/fixtures/llm/smollm2_forward.json
  python3 tests/ref/llm_forward_ref.py --self models/qwen2.5-0.5b.gguf \
      tests/fixtures/llm/qwen2.5-0.5b_forward.json

--self also runs llama.cpp a second time with n_batch=1 (one token per
decode: its vector kernels instead of the batched ones) and records how far
it agrees with itself ("self_agreement": top-1 agreement and mean |logit
difference| over the top-5 entries): the criterion the test holds us to for
that model (tests/ref/llm_self_agreement.py did this by hand for SmolLM2).
"""
import hashlib
import json
import os
import sys

import numpy as np
from llama_cpp import Llama, __version__ as llama_cpp_version

# Varied text, written for this test: prose, dialogue in the chat template,
# code, structured data, numbers, several languages and scripts.
TEXTS = [
    # prose
    "At dawn the harbor is still grey. Fishing boats sit low in the water, their hulls streaked with rust "
    "and salt, and a thin mist drifts between the masts. A gull lands on a stack of crates, shakes the wet "
    "from its feathers and watches a man in a yellow coat coil a rope on the quay. Somewhere behind the "
    "warehouses a radio plays an old song, and the first tram of the morning rattles over the bridge. By "
    "seven the sun has burned through the haze: the water turns from pewter to green, the cranes throw long "
    "shadows across the cobbles, and the market stalls open one after another, each with its own smell of "
    "bread, coffee, oranges or fish. Children run along the sea wall with a kite that refuses to rise. An old "
    "woman sells postcards that nobody buys. When the ferry sounds its horn, everyone looks up at once, as if "
    "they had been waiting all their lives for that one low note to tell them the day had really begun. "
    "The camera follows the ferry out past the lighthouse, where the swell grows and the spray catches the light.",
    # chat template (ChatML), as prompt-expand sends it
    "<|im_start|>system\nYou are a helpful assistant that writes short, vivid scene descriptions for a video "
    "generator.<|im_end|>\n<|im_start|>user\nTopic: a journey from a snowy mountain village to a desert city at "
    "night. Write 4 numbered scene prompts, one per line, each describing what the camera sees: subject, setting, "
    "light and motion.<|im_end|>\n<|im_start|>assistant\n1. A slow aerial shot over a snow-covered village at "
    "first light, smoke curling from chimneys, wooden houses glowing amber.\n2. A narrow mountain road winding "
    "down through pine forest, a red bus moving carefully between snowbanks, low sun flaring through the trees.\n"
    "3. Endless dunes at golden hour, the shadow of a single camel caravan stretching across the sand as the "
    "wind lifts fine ripples.\n4. A desert city at night seen from a rooftop, lanterns and neon signs flickering, "
    "crowds flowing through the streets below while the camera pans toward the full moon.<|im_end|>\n",
    # code
    "def merge_intervals(intervals):\n    \"\"\"Merge overlapping [start, end] pairs.\"\"\"\n    if not intervals:\n"
    "        return []\n    intervals = sorted(intervals, key=lambda p: p[0])\n    out = [list(intervals[0])]\n"
    "    for start, end in intervals[1:]:\n        if start <= out[-1][1]:\n            out[-1][1] = max(out[-1][1], end)\n"
    "        else:\n            out.append([start, end])\n    return out\n\n\nclass LRUCache:\n"
    "    def __init__(self, capacity: int):\n        self.capacity = capacity\n        self.data = {}\n\n"
    "    def get(self, key):\n        if key not in self.data:\n            return -1\n"
    "        value = self.data.pop(key)\n        self.data[key] = value\n        return value\n\n"
    "    def put(self, key, value):\n        self.data.pop(key, None)\n        self.data[key] = value\n"
    "        if len(self.data) > self.capacity:\n            self.data.pop(next(iter(self.data)))\n\n"
    "#include <stdio.h>\nint main(void) {\n    for (int i = 0; i < 10; i++)\n        printf(\"%d squared is %d\\n\", i, i * i);\n"
    "    return 0;\n}\n",
    # structured data and numbers
    "{\n  \"segments\": [\n    {\"index\": 0, \"prompt\": \"a lighthouse on a cliff, storm clouds, waves crashing\", "
    "\"frames\": 48, \"fps\": 24},\n    {\"index\": 1, \"prompt\": \"the same lighthouse at night, beam sweeping over "
    "rain\", \"frames\": 48, \"fps\": 24}\n  ],\n  \"seed\": 1234,\n  \"width\": 832,\n  \"height\": 480\n}\n"
    "Table 3. Results (mean ± std over 5 runs)\n| model | params | top-1 | latency (ms) |\n|---|---|---|---|\n"
    "| small | 135M | 71.2 ± 0.4 | 12.5 |\n| medium | 360M | 76.9 ± 0.3 | 31.0 |\n| large | 1.7B | 81.4 ± 0.2 | 118.7 |\n"
    "The total was 3,141,592 units in 2023, up 12.5% from 2,792,526 in 2022; 7 × 8 = 56, 2^10 = 1024, "
    "sqrt(2) ≈ 1.41421356, and π ≈ 3.14159265358979. Call +1 (555) 010-2368 before 18:30 on 2024-03-15.",
    # languages and scripts
    "Le soleil se couche sur la mer et les bateaux rentrent au port, lentement, les uns après les autres. "
    "Im Winter liegt der Schnee hoch in den Bergen, und die Dörfer sind still. El tren cruza el puente al "
    "amanecer mientras la ciudad despierta. Москва — столица России, и зимой там очень холодно. "
    "東京の夜は明るく、人々は駅から急いで家に帰ります。 北京是中国的首都，有很多历史悠久的建筑。 "
    "서울의 봄은 벚꽃으로 가득합니다. 🌅🚢⛵ The sunset 🌇 over the bay — café, naïve, résumé, façade, "
    "Ångström, São Paulo, Kraków.   Multiple   spaces\tand\ttabs,\n\n\nblank lines,   trailing spaces   \n"
    "A final sentence in English to close the sequence, with a question: what happens next?",
    # a second long prose sequence (positions up to ~500 exercise RoPE further out)
    "The expedition left the valley in early spring, when the rivers were still swollen with meltwater and the "
    "passes were only just open. There were eleven of them: the surveyor, who kept the maps in an oilskin case and "
    "trusted no one else to carry it; two brothers from the coast who had never seen snow; a botanist with a "
    "press full of drying flowers; the cook, a quiet man who sang at night; and six porters who knew the road better "
    "than any map. On the third day the weather turned. Clouds came down over the ridge like a lid, and for a week "
    "they walked inside a white room with no walls, following the sound of the bells tied to the mules. The botanist "
    "found a blue poppy growing out of bare scree and wept, and nobody laughed at him. On the ninth day the clouds "
    "lifted all at once, and they saw below them a lake so still that the mountains stood in it upside down, every "
    "crevasse and cornice repeated in the water. They camped on the shore. In the morning the surveyor measured the "
    "height of the far peak three times and wrote three different numbers in his notebook, then crossed them all "
    "out and drew, very carefully, a small picture of the lake instead. Years later, when the maps had been printed "
    "and the route had a name, that page was the one he showed his grandchildren, and the numbers were forgotten. "
    "What the camera would see: a long line of figures crossing a snowfield under a low sun, breath steaming, the "
    "mules' bells glinting, and then, cut, the mirror lake at dawn with a single tent pitched on the shingle.",
    # a shot list (the kind of text prompt-expand produces)
    "Scene list for a short film about a lighthouse keeper:\n- Opening: a wide shot of a rocky island under a "
    "bruised sky, gulls wheeling, the lighthouse a white needle against the clouds.\n- The keeper climbs the spiral "
    "stairs with a lantern; brass rails gleam, his shadow sliding up the curved wall.\n- Close-up of his hands "
    "trimming the wick, soot on his fingers, the lens throwing rainbow fragments across the glass.\n- Night: the "
    "beam sweeps over black water; a fishing boat appears, rides a wave, disappears.\n- Storm: rain hammers the "
    "windows, the tower shudders, he writes in the log by candlelight.\n- Dawn: calm sea like hammered silver, the "
    "keeper asleep in his chair, a cup of cold tea on the table, the lamp still turning.\nNotes: keep the palette "
    "cold blue and amber; slow camera moves; no dialogue; ambient sound only. Each shot lasts four to six seconds. "
    "Transitions are dissolves, except the cut from the storm to the dawn, which should be sudden and silent.",
    # a short story with dialogue
    "\"Are you sure this is the right road?\" Mara asked, leaning forward to wipe the fog from the windscreen.\n"
    "\"No,\" said her brother, \"but it is the only road.\" The headlights found a sign, bent and rusted, with half its "
    "letters gone. They drove on. After a while the trees thinned and the land opened into a wide valley where a "
    "river shone under the moon. In the middle of the valley stood a house with every window lit.\n\"Someone is "
    "expecting us,\" Mara said.\n\"Someone is expecting someone,\" he answered, and slowed the car. A dog barked. "
    "The front door opened and an old woman stepped out onto the porch, shading her eyes against the lights as if "
    "it were noon. She raised one hand, not in greeting but in warning, and pointed back the way they had come. "
    "Mara looked at her brother. He looked at the river, at the house, at the long empty road behind them, and "
    "for the first time that night he switched off the engine. In the sudden silence they could hear music, very "
    "faint, coming from somewhere beneath the water.",
]


def main():
    args = sys.argv[1:]
    with_self = args[:1] == ["--self"]
    if with_self:
        args = args[1:]
    if len(args) != 2:
        sys.exit("usage: llm_forward_ref.py [--self] MODEL.gguf OUT.json")
    model, out = args
    llm = Llama(model_path=model, n_ctx=1024, n_batch=1024, n_threads=2, logits_all=True, verbose=False)
    seqs = []
    total = 0
    for text in TEXTS:
        toks = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        llm.reset()
        llm.eval(toks)
        logits = np.array(llm.scores[: len(toks)], dtype=np.float32)
        top5 = np.argsort(-logits, axis=1)[:, :5]
        seqs.append({
            "tokens": [int(t) for t in toks],
            "top5": [[int(i) for i in row] for row in top5],
            "top5_logits": [[round(float(logits[p, i]), 4) for i in row] for p, row in enumerate(top5)],
        })
        total += len(toks)
    self_agreement = None
    if with_self:
        del llm
        one = Llama(model_path=model, n_ctx=1024, n_batch=1, n_ubatch=1, n_threads=2, logits_all=True, verbose=False)
        agree = n = 0
        diffs = []
        for s in seqs:
            toks = s["tokens"]
            one.reset()
            one.eval(toks)
            lg = np.array(one.scores[: len(toks)])
            t5, l5 = np.array(s["top5"]), np.array(s["top5_logits"])
            diffs.append(np.abs(np.take_along_axis(lg, t5, 1) - l5).ravel())
            agree += int((lg.argmax(1) == t5[:, 0]).sum())
            n += len(toks)
        self_agreement = {"n_batch": [1, 1024], "positions": n, "top1": round(agree / n, 5),
                          "mean_abs_diff": round(float(np.concatenate(diffs).mean()), 5)}
        print("llama.cpp n_batch=1 vs n_batch=1024: top-1 agreement %.4f over %d positions, mean |diff| %.4f"
              % (agree / n, n, self_agreement["mean_abs_diff"]))
    with open(model, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    doc = {
        "generator": "tests/ref/llm_forward_ref.py" + (" --self" if with_self else ""),
        "reference": "llama.cpp via llama-cpp-python " + llama_cpp_version,
        "model": os.path.basename(model),
        "model_sha256": sha,
        "positions": total,
        "sequences": seqs,
    }
    if self_agreement:
        doc["self_agreement"] = self_agreement
    with open(out, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"{out}: {len(seqs)} sequences, {total} positions")


if __name__ == "__main__":
    main()
