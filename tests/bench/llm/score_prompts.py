#!/usr/bin/env python3
"""score_prompts.py - score prompt-expand outputs of default_model.sh
(Debian python3 standard library only). For each output folder (one model):

  runs      topics run, and how many exited != 0
  first try topics whose every prompt came from its first attempt
  fallback  prompts for which the topic stood in (source "topic")
  wall      seconds per topic (times.txt: whole process, model load included)
  CPU       user + system seconds per topic (when times.txt has them)

and four checks of each prompt, all computed from the text:

  subject   the prompt names the topic's subjects: at least half of the
            topic's content words (lower-case words of 3+ letters that are not
            stop words or -ing forms) occur in the prompt, a word matching
            when both are equal after removing a plural ending (ies->y, es, s)
  distinct  the word-set Jaccard similarity with every other prompt of the
            same topic is below 0.5
  distinct+ the same over the words that are neither the topic's words nor
            stop words (what each shot adds): both prompts naming the topic's
            subjects, as "subject" asks, pushes the plain Jaccard up, so this
            one says whether the shots differ beyond the topic (added after
            the first results showed that conflict)
  length    15..80 words (the instruction asks for 15-40) and at most 400
            bytes, the tool's own limit; 400 bytes are at most 401 umT5 tokens
            with the end token, under Wan's 512
  no copy   no run of 8 words in common with the worked examples and the
            instruction of tools/prompt-expand/prompts.h (read from that
            file), and no example's subject (the first content word of each
            example topic: lighthouse, cyclist) unless the topic has it.
            (A first version counted 5-word runs: its only hits were the
            stock phrase "the camera pulls back to", so it measured style,
            not copying; --ngram 5 gives it back.)

A prompt from a topic fallback fails every check. "all 4" counts prompts
passing subject, distinct, length and no copy.
"""
import glob, json, os, re, statistics, sys

STOP = set("""a an the and or of in on at to for from with by over under into onto
through across along around above below between among while as is are was were be
been being its their his her our your this that these those it they them he she we
you one two three some any each every all no not very up down out off near far
about after before during than then there here who whom which what when where why
how has have had do does did will would can could may might shall should""".split())


NGRAM = 8


def words(s):
    return re.findall(r"[a-z]+(?:'[a-z]+)?", s.lower())


def stem(w):
    if w.endswith("'s"):
        w = w[:-2]
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 4 and re.search(r"(ss|sh|ch|x|z)es$", w):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        return w[:-1]
    return w


def content_words(topic):
    out = []
    for w in words(topic):
        if len(w) < 3 or w in STOP or w.endswith("ing"):
            continue
        s = stem(w)
        if s not in out:
            out.append(s)
    return out


def examples(root):
    """the worked-example and instruction texts of prompts.h"""
    text = open(os.path.join(root, "tools/prompt-expand/prompts.h")).read()
    out = {}
    for m in re.finditer(r"#define\s+(PE_\w+)\s+((?:\\\n|[^\n])*)", text):
        parts = re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(2))
        if parts:
            out[m.group(1)] = "".join(parts)
    return out


def ngrams(ws, n):
    return {tuple(ws[i:i + n]) for i in range(len(ws) - n + 1)}


def main(argv):
    global NGRAM
    topics_file = "tests/bench/llm/topics_heldout.txt"
    if len(argv) > 2 and argv[1] == "--ngram":
        NGRAM = int(argv[2])
        argv = argv[2:]
    if len(argv) > 2 and argv[1] == "--topics":
        topics_file = argv[2]
        argv = argv[2:]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    ex = examples(root)
    ex_grams = set()
    ex_subj = [content_words(v)[0] for k, v in ex.items() if k.endswith("_TOPIC")]
    for k, v in ex.items():
        if k.endswith("_SHOT") or k.endswith("_PREV") or k == "PE_SYSTEM":
            ex_grams |= ngrams(words(v), NGRAM)
    topics = [l.strip() for l in open(topics_file) if l.strip() and not l.startswith("#")]
    rows = []
    for d in argv[1:]:
        name = os.path.basename(os.path.normpath(d))
        times = {}
        if os.path.exists(os.path.join(d, "times.txt")):
            for line in open(os.path.join(d, "times.txt")):
                f = line.split()
                cpu = float(f[4]) if len(f) > 4 and f[4] != "-" else None
                times[f[0]] = (int(f[1]), float(f[2]), cpu)
        runs = fails = first = prompts = fb = constrained = 0
        chk = {"subject": 0, "distinct": 0, "distinct2": 0, "length": 0, "nocopy": 0, "all": 0}
        jacs = []
        cover = []
        detail = []
        for i, topic in enumerate(topics, 1):
            n = "%02d" % i
            if n not in times:
                continue
            runs += 1
            rc, secs, _ = times[n]
            js = os.path.join(d, n + ".json")
            if rc != 0 or not os.path.exists(js):
                fails += 1
                detail.append(f"{name} {n}: exit {rc}")
                continue
            j = json.load(open(js))
            segs = j["segments"]
            first += all(s.get("attempts", 1) == 1 and s.get("source") != "topic" for s in segs)
            cw = content_words(topic)
            sets = [set(words(s["prompt"])) for s in segs]
            tw = set(words(topic)) | STOP
            sets2 = [{w for w in x if w not in tw and stem(w) not in cw} for x in sets]
            for k, s in enumerate(segs):
                prompts += 1
                p = s["prompt"]
                if s.get("constrained"):
                    constrained += 1
                if s.get("source") == "topic":
                    fb += 1
                    detail.append(f"{name} {n} prompt {k}: topic fallback ({s.get('fallback_reason')})")
                    cover.append(0.0)
                    continue
                pw = words(p)
                ps = {stem(w) for w in pw}
                c = sum(w in ps for w in cw) / len(cw) if cw else 1.0
                cover.append(c)
                ok_subj = c >= 0.5
                jac = max([len(sets[k] & sets[o]) / max(1, len(sets[k] | sets[o]))
                           for o in range(len(segs)) if o != k] or [0.0])
                ok_dist = jac < 0.5
                jacs.append(jac)
                jac2 = max([len(sets2[k] & sets2[o]) / max(1, len(sets2[k] | sets2[o]))
                            for o in range(len(segs)) if o != k] or [0.0])
                chk["distinct2"] += jac2 < 0.5
                ok_len = 15 <= len(pw) <= 80 and len(p.encode()) <= 400
                shared = ngrams(pw, NGRAM) & ex_grams
                shared |= {(w,) for w in ex_subj if w in ps and w not in cw}
                ok_copy = not shared
                for key, ok in (("subject", ok_subj), ("distinct", ok_dist), ("length", ok_len), ("nocopy", ok_copy)):
                    chk[key] += ok
                    if not ok:
                        detail.append(f"{name} {n} prompt {k}: fails {key}"
                                      + (f" (cover {c:.2f}, missing {[w for w in cw if w not in ps]})" if key == "subject" else "")
                                      + (f" (jaccard {jac:.2f})" if key == "distinct" else "")
                                      + (f" ({len(pw)} words)" if key == "length" else "")
                                      + (f" ({' / '.join(' '.join(g) for g in sorted(shared))})" if key == "nocopy" else ""))
                chk["all"] += ok_subj and ok_dist and ok_len and ok_copy
        secs = [t[1] for t in times.values()]
        cpus = [t[2] for t in times.values() if t[2] is not None]
        rows.append((name, runs, fails, first, prompts, constrained, fb, secs, cpus, cover, chk, jacs))
        for line in detail:
            print("#", line)
    pct = lambda a, b: f"{a}/{b} ({100.0 * a / b:.0f}%)" if b else "-"
    print("| model | topics | exit != 0 | first try (topics) | prompts | constrained | topic fallback "
          "| wall s/topic mean (median) | CPU s/topic mean | subject coverage mean | subject | distinct (Jaccard mean) | distinct+ | length | no copy | all 4 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, runs, fails, first, prompts, constrained, fb, secs, cpus, cover, chk, jacs in rows:
        mean = f"{statistics.mean(secs):.1f} ({statistics.median(secs):.1f})" if secs else "-"
        cm = f"{statistics.mean(cover):.2f}" if cover else "-"
        cpu = f"{statistics.mean(cpus):.1f}" if cpus and len(cpus) == len(secs) else "-"
        print(f"| {name} | {runs} | {fails} | {pct(first, runs)} | {prompts} | {constrained} | {fb} | {mean} | {cpu} | {cm} | "
              + pct(chk["subject"], prompts) + " | "
              + pct(chk["distinct"], prompts) + (f" ({statistics.mean(jacs):.2f})" if jacs else "") + " | "
              + " | ".join(pct(chk[k], prompts) for k in ("distinct2", "length", "nocopy", "all")) + " |")


if __name__ == "__main__":
    main(sys.argv)
