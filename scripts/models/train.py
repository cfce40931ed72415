"""Trains the target (on the corpus) or the draft (on the target's own greedy continuations plus the corpus), or
continues training either from an existing model (--init: a .pt state dict or an exported model.onnx).

A data file `x.bin` may have a loss mask beside it, `x.mask` (one byte per token, 1 = take the loss on predicting
this token): the chat mix uses it so the model learns replies, not requests. Files without one count every token.

Runs in the background for a long time, so it checkpoints every --ckpt-every steps (model, optimiser, step and
RNG state) and resumes from the checkpoint when restarted with the same arguments. The learning-rate schedule is
a function of the step alone, so a resumed run follows the same curve as an uninterrupted one."""
import argparse, json, math, os, time
import threads  # before torch: see threads.py
import numpy as np
import torch
import torch.nn.functional as F
from common import DRAFT, SEED, TARGET, VOCAB_SIZE, WORK
from model import Llama


def batches(tokens: np.ndarray, mask: np.ndarray, batch: int, seq: int, rng: np.random.Generator):
    """Random windows from the packed token stream (documents are already framed by <s> ... </s>), with the loss
    weights of each window's targets."""
    while True:
        starts = rng.integers(0, len(tokens) - seq - 1, size=batch)
        x = np.stack([tokens[s:s + seq + 1] for s in starts]).astype(np.int64)
        w = np.stack([mask[s + 1:s + seq + 1] for s in starts]).astype(np.float32)
        yield torch.from_numpy(x), torch.from_numpy(w)


def load_data(paths):
    """The files concatenated, with their masks (all ones where a file has none)."""
    toks, masks = [], []
    for p in paths:
        t = np.fromfile(p, dtype=np.uint16)
        mp = os.path.splitext(p)[0] + ".mask"
        m = np.fromfile(mp, dtype=np.uint8) if os.path.exists(mp) else np.ones(len(t), dtype=np.uint8)
        if len(m) != len(t):
            raise ValueError(f"{mp}: {len(m)} mask bytes for {len(t)} tokens")
        toks.append(t); masks.append(m)
    return np.concatenate(toks), np.concatenate(masks)


def init_weights(model, path):
    if path.endswith(".onnx"):
        from onnx_weights import state_dict_from_onnx
        model.load_state_dict(state_dict_from_onnx(path, model))
    else:
        state = torch.load(path)
        model.load_state_dict(state.get("model", state))


@torch.no_grad()
def heldout_loss(model, tokens: np.ndarray, seq: int, max_tokens: int) -> float:
    model.eval()
    n = min(len(tokens) - 1, max_tokens) // seq * seq
    x = torch.from_numpy(tokens[:n + 1].astype(np.int64))
    total, count = 0.0, 0
    for s in range(0, n, seq * 8):
        rows = [x[i:i + seq + 1] for i in range(s, min(s + seq * 8, n), seq)]
        b = torch.stack(rows)
        logits, _ = model(b[:, :-1])
        total += F.cross_entropy(logits.reshape(-1, VOCAB_SIZE), b[:, 1:].reshape(-1), reduction="sum").item()
        count += b[:, 1:].numel()
    model.train()
    return total / count


def lr_at(step, steps, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", choices=["target", "draft"], required=True)
    ap.add_argument("--data", nargs="+", required=True, help="uint16 token files; concatenated")
    ap.add_argument("--valid", default=os.path.join(WORK, "data", "valid.bin"))
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ckpt-every", type=int, default=25)
    ap.add_argument("--out", default=None)
    ap.add_argument("--init", default=None, help="start from these weights (.pt state dict or exported model.onnx)")
    ap.add_argument("--teacher", default=None,
                    help="draft only: distil from this target (.pt or model.onnx) on every window, teacher-forced: the "
                         "loss is the KL divergence from the target's next-token distribution (soft labels) instead "
                         "of the corpus's next token, so agreement is learnt at every position of the window")
    args = ap.parse_args()
    threads.torch_threads(torch, args.threads)
    out = args.out or os.path.join(WORK, args.kind)
    os.makedirs(out, exist_ok=True)
    ckpt_path = os.path.join(out, "ckpt.pt")

    torch.manual_seed(SEED)
    model = Llama(TARGET if args.kind == "target" else DRAFT, VOCAB_SIZE)
    if args.init:
        init_weights(model, args.init)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95))
    teacher = None
    if args.teacher:
        teacher = Llama(TARGET, VOCAB_SIZE).eval()
        init_weights(teacher, args.teacher)
        for p in teacher.parameters():
            p.requires_grad_(False)
    tokens, mask = load_data(args.data)
    valid = np.fromfile(args.valid, dtype=np.uint16)
    rng = np.random.default_rng(SEED)
    step, seconds, log = 0, 0.0, []
    if os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path)
        model.load_state_dict(ck["model"]); opt.load_state_dict(ck["opt"])
        step, seconds, log = ck["step"], ck["seconds"], ck["log"]
        rng.bit_generator.state = ck["rng"]
        print(f"resumed at step {step}", flush=True)
    print(json.dumps({"kind": args.kind, "params": model.num_params(), "train_tokens": int(len(tokens)),
                      "loss_tokens": int(mask.sum()), "init": args.init,
                      "steps": args.steps, "tokens_per_step": args.batch * args.seq}), flush=True)
    it = batches(tokens, mask, args.batch, args.seq, rng)
    model.train()
    t_last = time.time()
    while step < args.steps:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps, args.lr, args.warmup)
        b, w = next(it)
        logits, _ = model(b[:, :-1])
        if teacher is not None:
            with torch.no_grad():
                soft = F.log_softmax(teacher(b[:, :-1])[0].reshape(-1, VOCAB_SIZE), -1)
            per_token = F.kl_div(F.log_softmax(logits.reshape(-1, VOCAB_SIZE), -1), soft, log_target=True,
                                 reduction="none").sum(-1)
        else:
            per_token = F.cross_entropy(logits.reshape(-1, VOCAB_SIZE), b[:, 1:].reshape(-1), reduction="none")
        loss = (per_token * w.reshape(-1)).sum() / w.sum().clamp(min=1.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        now = time.time(); seconds += now - t_last; t_last = now
        if step % 10 == 0:
            print(f"step {step}/{args.steps} loss {loss.item():.3f} lr {opt.param_groups[0]['lr']:.2e} "
                  f"elapsed {seconds/60:.1f} min", flush=True)
        if step % args.ckpt_every == 0 or step == args.steps:
            entry = {"step": step, "train_loss": round(loss.item(), 4), "minutes": round(seconds / 60, 2)}
            if step % (args.ckpt_every * 4) == 0 or step == args.steps:
                entry["heldout_loss"] = round(heldout_loss(model, valid, args.seq, 40_000 if step < args.steps else 200_000), 4)
                print(json.dumps(entry), flush=True)
            log.append(entry)
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "seconds": seconds,
                        "log": log, "rng": rng.bit_generator.state}, ckpt_path + ".tmp")
            os.replace(ckpt_path + ".tmp", ckpt_path)
            t_last = time.time()
    final = log[-1]
    summary = {"kind": args.kind, "params": model.num_params(), "steps": step, "tokens_seen": step * args.batch * args.seq,
               "train_minutes": round(seconds / 60, 1), "heldout_loss": final.get("heldout_loss"),
               "heldout_ppl": round(math.exp(final["heldout_loss"]), 2) if final.get("heldout_loss") else None,
               "batch": args.batch, "seq": args.seq, "lr": args.lr, "seed": SEED, "init": args.init,
               "teacher": args.teacher, "log": log}
    torch.save(model.state_dict(), os.path.join(out, "final.pt"))
    with open(os.path.join(out, "train_summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps({k: v for k, v in summary.items() if k != "log"}), flush=True)


if __name__ == "__main__":
    main()
