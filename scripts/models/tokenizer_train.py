"""Trains the byte-level BPE shared by both bundled models and writes tokenizer.json/tokenizer_config.json.

Written here rather than with the `tokenizers` library because only Debian's Python packages are available;
the output is the standard Hugging Face format, so AutoTokenizer (Python or transformers.js) loads it.
Pre-tokenisation approximates GPT-2's regex (what the ByteLevel pre-tokenizer applies at encode time), so the
merges learned here are the ones that fire when the tokenizer runs."""
import collections, heapq, json, os, re, sys, time
from common import (CORPUS, GUTENBERG_DIR, SPECIAL_TOKENS, TS_TRAIN, VOCAB_SIZE, BOS_ID, EOS_ID, PAD_ID,
                    MAX_POSITIONS, WORK)

PRETOKENIZE = re.compile(r"""'(?:s|t|re|ve|m|ll|d)| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")

CHAT_TEMPLATE = ("{{ bos_token }}{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
                 "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
                 "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def bytes_to_unicode():
    """GPT-2's reversible byte → printable-character table used by the ByteLevel pre-tokenizer."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def corpus_texts():
    for path in TS_TRAIN:
        yield open(path, encoding="utf-8").read().replace("<|endoftext|>", "\n")
    for name in sorted(os.listdir(GUTENBERG_DIR)):
        yield open(os.path.join(GUTENBERG_DIR, name), encoding="utf-8").read()


def train(vocab_size: int):
    b2u = bytes_to_unicode()
    word_counts = collections.Counter()
    for text in corpus_texts():
        word_counts.update(PRETOKENIZE.findall(text))
    words = [[b2u[b] for b in w.encode("utf-8")] for w in word_counts]
    freqs = list(word_counts.values())

    pair_counts = collections.Counter()
    where = collections.defaultdict(set)  # pair -> indices of words containing it
    for i, (syms, f) in enumerate(zip(words, freqs)):
        for a, b in zip(syms, syms[1:]):
            pair_counts[(a, b)] += f
            where[(a, b)].add(i)

    # Lazy max-heap: entries go stale when counts change and are re-checked on pop.
    heap = [(-c, p) for p, c in pair_counts.items()]
    heapq.heapify(heap)
    base = list(SPECIAL_TOKENS) + [b2u[b] for b in range(256)]
    merges = []
    n_merges = vocab_size - len(base)
    while len(merges) < n_merges and heap:
        negc, pair = heapq.heappop(heap)
        if pair_counts.get(pair, 0) != -negc or negc == 0:
            continue
        merges.append(pair)
        merged = pair[0] + pair[1]
        touched = collections.Counter()
        for i in list(where[pair]):
            syms, f = words[i], freqs[i]
            for a, b in zip(syms, syms[1:]):
                pair_counts[(a, b)] -= f
                touched[(a, b)] += 0
            out, j = [], 0
            while j < len(syms):
                if j + 1 < len(syms) and syms[j] == pair[0] and syms[j + 1] == pair[1]:
                    out.append(merged)
                    j += 2
                else:
                    out.append(syms[j])
                    j += 1
            words[i] = out
            for a, b in zip(out, out[1:]):
                pair_counts[(a, b)] += f
                where[(a, b)].add(i)
                touched[(a, b)] += 0
        del pair_counts[pair]
        where.pop(pair, None)
        for p in touched:
            c = pair_counts.get(p, 0)
            if c > 0:
                heapq.heappush(heap, (-c, p))
            else:
                pair_counts.pop(p, None)
    vocab = {tok: i for i, tok in enumerate(base + [a + b for a, b in merges])}
    return vocab, merges


def tokenizer_json(vocab, merges):
    added = [dict(id=i, content=t, single_word=False, lstrip=False, rstrip=False, normalized=False, special=True)
             for i, t in enumerate(SPECIAL_TOKENS)]
    bos = SPECIAL_TOKENS[BOS_ID]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {bos: {"id": bos, "ids": [BOS_ID], "tokens": [bos]}},
        },
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]},
    }


def tokenizer_config():
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": SPECIAL_TOKENS[BOS_ID],
        "eos_token": SPECIAL_TOKENS[EOS_ID],
        "pad_token": SPECIAL_TOKENS[PAD_ID],
        "unk_token": None,
        "add_bos_token": True,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": MAX_POSITIONS,
        "chat_template": CHAT_TEMPLATE,
        "additional_special_tokens": SPECIAL_TOKENS[3:],
    }


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(WORK, "tokenizer")
    os.makedirs(out, exist_ok=True)
    t0 = time.time()
    vocab, merges = train(VOCAB_SIZE)
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer_json(vocab, merges), f, ensure_ascii=False, indent=None, separators=(",", ":"))
    with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer_config(), f, ensure_ascii=False, indent=2)
    print(json.dumps({"vocab": len(vocab), "merges": len(merges), "seconds": round(time.time() - t0, 1), "out": out}))


if __name__ == "__main__":
    main()
