"""Shared paths, special tokens and model shapes for the bundled-model pipeline.

Every script imports its constants from here so the tokenizer, the training runs and the export agree
on one definition (the seed, the special-token ids, the two architectures)."""
import os

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CORPUS = os.environ.get("SPECD_CORPUS", os.path.abspath(os.path.join(ROOT, "..", "shared", "corpus")))
WORK = os.environ.get("SPECD_MODELS_WORK", os.path.join(ROOT, "scripts", "models", "work"))
SEED = 1234

TS_TRAIN = [os.path.join(CORPUS, "tinystories", f) for f in ("ts_train_head_cased.txt", "ts_train_tail_truecased.txt")]
TS_VALID = os.path.join(CORPUS, "tinystories", "ts_valid_head.txt")
GUTENBERG_DIR = os.path.join(CORPUS, "gutenberg")

# Ids 0..4 are fixed so both models, the chat template and the engine agree without lookups.
SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
PAD_ID, BOS_ID, EOS_ID, IM_START_ID, IM_END_ID = range(5)
VOCAB_SIZE = 8192
MAX_POSITIONS = 1024

TARGET_NAME = "specd-story-16m"
DRAFT_NAME = "specd-story-draft-1.5m"

# Llama shapes. The target is wide enough to be memory-bound at decode (where speculation pays); the draft is
# under a tenth of its parameters, so a draft step costs a small fraction of a target step.
TARGET = dict(hidden_size=384, num_hidden_layers=8, num_attention_heads=6, num_key_value_heads=2,
              intermediate_size=1024, head_dim=64)
DRAFT = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
             intermediate_size=384, head_dim=64)
ROPE_THETA = 10000.0
RMS_EPS = 1e-5


def model_dir(kind: str) -> str:
    return os.path.join(ROOT, "target-models" if kind == "target" else "draft-models",
                        TARGET_NAME if kind == "target" else DRAFT_NAME)
