"""Builds the draft's training data from the target itself: for every training story, the target continues the
story's opening (random length) greedily, plus a sampled continuation for a third of them; with --chat, it also
replies to the chat mix's requests (the prompt up to `<|im_start|>assistant\n`, greedy). The draft then learns
the target's own choices in the contexts the target produces, which is what decides acceptance at serving time,
rather than the corpus's (noisier) next tokens.

Output: distill.bin, uint16 token stream framed like train.bin (<s> prompt continuation </s>)."""
import argparse, json, os, time
import threads  # before torch: see threads.py
import numpy as np
import torch
from common import BOS_ID, EOS_ID, IM_END_ID, SEED, TARGET, VOCAB_SIZE, WORK
from model import Llama


@torch.no_grad()
def continue_batch(model, prompts: torch.Tensor, new_tokens: int, temperature: float, gen: torch.Generator):
    logits, past = model(prompts)
    B, P = prompts.shape
    out = []
    for t in range(new_tokens):
        last = logits[:, -1, :]
        nxt = last.argmax(-1) if temperature == 0 else torch.multinomial(torch.softmax(last / temperature, -1), 1, generator=gen).squeeze(1)
        out.append(nxt)
        pos = torch.full((B, 1), P + t, dtype=torch.long)
        logits, past = model(nxt.unsqueeze(1), torch.ones(B, P + t + 1, dtype=torch.long), pos, past)
    return torch.stack(out, 1)


def documents(tokens: np.ndarray):
    starts = np.flatnonzero(tokens == BOS_ID)
    ends = list(starts[1:]) + [len(tokens)]
    return [tokens[s:e] for s, e in zip(starts, ends)]


def chat_requests(path: str):
    """Each chat example's prompt: its tokens up to the reply (the first token the mask marks for the loss)."""
    tokens = np.fromfile(path, dtype=np.uint16)
    mask = np.fromfile(os.path.splitext(path)[0] + ".mask", dtype=np.uint8)
    out = []
    for s in np.flatnonzero(tokens == BOS_ID):
        reply = s + int(np.argmax(mask[s:s + 512] == 1))
        if reply > s:
            out.append(tokens[s:reply])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default=os.path.join(WORK, "target", "final.pt"))
    ap.add_argument("--data", default=os.path.join(WORK, "data", "train.bin"))
    ap.add_argument("--out", default=os.path.join(WORK, "data", "distill.bin"))
    ap.add_argument("--new-tokens", type=int, default=96)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--sampled-every", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="only the first N stories (smoke tests)")
    ap.add_argument("--chat", default=None, help="chat mix (chat.bin with chat.mask beside it): reply to its requests")
    ap.add_argument("--chat-every", type=int, default=2, help="reply to 1 in N of the chat mix's requests")
    ap.add_argument("--chat-tokens", type=int, default=128)
    args = ap.parse_args()
    threads.torch_threads(torch, args.threads)
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    gen = torch.Generator().manual_seed(SEED)
    model = Llama(TARGET, VOCAB_SIZE).eval()
    if args.weights.endswith(".onnx"):
        from onnx_weights import state_dict_from_onnx
        model.load_state_dict(state_dict_from_onnx(args.weights, model))
    else:
        state = torch.load(args.weights)
        model.load_state_dict(state.get("model", state) if isinstance(state, dict) and "model" in state else state)
    docs = [d for d in documents(np.fromfile(args.data, dtype=np.uint16)) if len(d) >= 24]
    if args.limit:
        docs = docs[:args.limit]
    t0, stream, n_gen = time.time(), [], 0
    plain = [(d, 0.0) for d in docs] + [(d, 1.0) for d in docs[::args.sampled_every]]
    # Same prompt length within a batch, so no padding is needed: plain openings are cut to one random length per
    # batch; chat requests are whole, so they are grouped by length.
    batches = []
    for b in range(0, len(plain), args.batch):
        batch = plain[b:b + args.batch]
        plen = int(rng.integers(4, min(64, min(len(d) for d, _ in batch) - 1)))
        temp = batch[0][1] if all(t == batch[0][1] for _, t in batch) else 0.0
        batches.append(([d[:plen] for d, _ in batch], temp, args.new_tokens))
    if args.chat:
        requests = chat_requests(args.chat)[::args.chat_every]
        if args.limit:
            requests = requests[:args.limit]
        by_len = {}
        for r in requests:
            by_len.setdefault(len(r), []).append(r)
        for group in by_len.values():
            for b in range(0, len(group), args.batch):
                batches.append((group[b:b + args.batch], 0.0, args.chat_tokens))
    n_seq = sum(len(p) for p, _, _ in batches)
    for i, (rows, temp, new_tokens) in enumerate(batches):
        prompts = torch.tensor(np.stack(rows).astype(np.int64))
        cont = continue_batch(model, prompts, new_tokens, temp, gen).numpy()
        for p, c in zip(prompts.numpy(), cont):
            stop = next((i for i, t in enumerate(c) if t in (EOS_ID, IM_END_ID)), None)
            c = c[:stop + 1] if stop is not None else c
            stream.append(np.concatenate([p, c, [EOS_ID] if stop is None or c[-1] != EOS_ID else []]))
            n_gen += len(c)
        if i % 10 == 0:
            print(f"batch {i + 1}/{len(batches)} ({n_seq} sequences), {n_gen} generated tokens, {time.time() - t0:.0f}s", flush=True)
    np.concatenate(stream).astype(np.uint16).tofile(args.out)
    print(json.dumps({"sequences": len(stream), "generated_tokens": n_gen, "seconds": round(time.time() - t0)}))


if __name__ == "__main__":
    main()
