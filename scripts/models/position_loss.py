"""Held-out loss by position, for the bundled pair (or any export of the same shapes): where in a long window a
model stops predicting well. Windows of 1,024 tokens from the encoded validation file (encode-corpus.ts writes it),
teacher-forced, loss averaged per quarter of the window, and the draft's greedy agreement with the target per quarter
(the share of positions where their argmax tokens are equal).

    /usr/bin/python3 scripts/models/position_loss.py [--valid scripts/models/work/data/valid.bin] [--windows 4] [--draft DIR]
"""
import argparse, json, os, sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from common import DRAFT, TARGET, VOCAB_SIZE, WORK, model_dir  # noqa: E402
from model import Llama  # noqa: E402
from onnx_weights import state_dict_from_onnx  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--valid", default=os.path.join(WORK, "data", "valid.bin"))
ap.add_argument("--windows", type=int, default=4)
ap.add_argument("--window", type=int, default=1024)
ap.add_argument("--target", default=model_dir("target"), help="model folder")
ap.add_argument("--draft", default=model_dir("draft"), help="model folder")
args = ap.parse_args()
torch.set_num_threads(1)
tokens = np.fromfile(args.valid, dtype=np.uint16).astype(np.int64)
W, Q = args.window, args.window // 4
out, target_argmax = {}, []
agreement = [[] for _ in range(4)]
for kind, cfg in (("target", TARGET), ("draft", DRAFT)):
    model = Llama(cfg, VOCAB_SIZE).eval()
    model.load_state_dict(state_dict_from_onnx(os.path.join(getattr(args, kind), "onnx", "model.onnx"), model))
    quarters = [[] for _ in range(4)]
    with torch.no_grad():
        for w in range(args.windows):
            x = torch.from_numpy(tokens[w * W : w * W + W + 1]).unsqueeze(0)
            logits, _ = model(x[:, :-1])
            loss = F.cross_entropy(logits[0], x[0, 1:], reduction="none")
            top = logits[0].argmax(-1)
            if kind == "target":
                target_argmax.append(top)
            for q in range(4):
                quarters[q].append(loss[q * Q : (q + 1) * Q].mean().item())
                if kind == "draft":  # greedy agreement with the target, what greedy speculation accepts
                    agreement[q].append((top[q * Q : (q + 1) * Q] == target_argmax[w][q * Q : (q + 1) * Q]).float().mean().item())
    out[kind] = {f"{q * Q}-{(q + 1) * Q}": round(float(np.mean(v)), 3) for q, v in enumerate(quarters)}
out["draft_agreement_with_target"] = {f"{q * Q}-{(q + 1) * Q}": round(float(np.mean(v)), 3) for q, v in enumerate(agreement)}
print(json.dumps(out))
