"""A minimal Llama (RMSNorm, RoPE, SwiGLU, grouped-query attention) with an explicit KV-cache interface.

One module serves training (no past) and ONNX export (flattened past in, present out), so the exported graph
is exactly the network that was trained. Output embedding is tied to the input embedding; logits go through
a 2-D F.linear so the exporter emits Gemm(transB=1) on the shared weight instead of folding a transposed copy
into the file (which would store the embedding twice)."""
import math
import torch
import torch.nn as nn
import torch.nn.functional as F
from common import ROPE_THETA, RMS_EPS


class RMSNorm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + RMS_EPS) * self.weight


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, self.h, self.kvh, self.hd = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
        self.q_proj = nn.Linear(d, self.h * self.hd, bias=False)
        self.k_proj = nn.Linear(d, self.kvh * self.hd, bias=False)
        self.v_proj = nn.Linear(d, self.kvh * self.hd, bias=False)
        self.o_proj = nn.Linear(self.h * self.hd, d, bias=False)

    def forward(self, x, cos, sin, bias, past_k=None, past_v=None):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.h, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.kvh, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.kvh, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if past_k is not None:
            k = torch.cat([past_k, k], dim=2)
            v = torch.cat([past_v, v], dim=2)
        present = (k, v)
        rep = self.h // self.kvh
        # Group query heads by their shared KV head instead of repeating K/V: no copy of the cache per step.
        qg = q.reshape(B, self.kvh, rep * T, self.hd)
        scores = torch.matmul(qg, k.transpose(2, 3)) / math.sqrt(self.hd)
        scores = scores.view(B, self.kvh, rep, T, -1) + bias.unsqueeze(1)
        probs = torch.softmax(scores, dim=-1).view(B, self.kvh, rep * T, -1)
        out = torch.matmul(probs, v).view(B, self.h, T, self.hd).transpose(1, 2).reshape(B, T, self.h * self.hd)
        return self.o_proj(out), present


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, m = cfg["hidden_size"], cfg["intermediate_size"]
        self.gate_proj = nn.Linear(d, m, bias=False)
        self.up_proj = nn.Linear(d, m, bias=False)
        self.down_proj = nn.Linear(m, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg["hidden_size"])
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg["hidden_size"])
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, bias, past_k=None, past_v=None):
        a, present = self.self_attn(self.input_layernorm(x), cos, sin, bias, past_k, past_v)
        x = x + a
        return x + self.mlp(self.post_attention_layernorm(x)), present


class Llama(nn.Module):
    def __init__(self, cfg, vocab_size):
        super().__init__()
        self.cfg, self.vocab_size = cfg, vocab_size
        self.embed_tokens = nn.Embedding(vocab_size, cfg["hidden_size"])
        self.layers = nn.ModuleList([Block(cfg) for _ in range(cfg["num_hidden_layers"])])
        self.norm = RMSNorm(cfg["hidden_size"])
        hd = cfg["head_dim"]
        self.register_buffer("inv_freq", 1.0 / (ROPE_THETA ** (torch.arange(0, hd, 2).float() / hd)), persistent=False)
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith("o_proj.weight") or name.endswith("down_proj.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg["num_hidden_layers"]))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    def num_params(self):
        return sum(p.numel() for p in self.parameters())

    def forward(self, input_ids, attention_mask=None, position_ids=None, past=None):
        """past: list of (k, v) per layer, each [B, kvH, P, hd]. Returns (logits [B,T,V], presents)."""
        B, T = input_ids.shape
        P = 0 if past is None else past[0][0].shape[2]
        if attention_mask is None:
            attention_mask = torch.ones(B, P + T, dtype=torch.long)
        if position_ids is None:
            position_ids = (torch.arange(T) + P).unsqueeze(0).expand(B, T)
        freqs = position_ids.unsqueeze(-1).float() * self.inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos().unsqueeze(1), emb.sin().unsqueeze(1)
        # Causal by index in the cache (not by position id): a masked-out slot stays masked, which is what lets
        # the engine roll back rejected drafts by masking instead of copying.
        k_idx = torch.arange(P + T)
        q_idx = torch.arange(T) + P
        allowed = (k_idx.unsqueeze(0) <= q_idx.unsqueeze(1)).unsqueeze(0) & attention_mask.bool().unsqueeze(1)
        bias = (~allowed).float().unsqueeze(1) * -1e9  # [B,1,T,S]; finite so fully-masked pad rows stay NaN-free
        x = self.embed_tokens(input_ids)
        presents = []
        for i, layer in enumerate(self.layers):
            pk, pv = (None, None) if past is None else past[i]
            x, present = layer(x, cos, sin, bias, pk, pv)
            presents.append(present)
        x = self.norm(x)
        logits = F.linear(x.reshape(B * T, -1), self.embed_tokens.weight).view(B, T, self.vocab_size)
        return logits, presents
