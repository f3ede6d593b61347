#!/usr/bin/python3
"""embed_baseline — the baselines the embedding examples (examples/embed/) put beside kiln's
models, written as `embedding` records so that `kiln index` and `kiln search --relevant`
score them with the same code as kiln's own vectors:

  --pixels        an image's pixel values (sample records, `image` U8 [H,W,C]) as the
                  vector, L2-normalised: cosine nearest neighbour on pixels
  --tfidf FILE    a text's TF-IDF vector over the words of FILE's texts (the corpus: the IDF
                  is fitted there), sublinear tf, L2-normalised, as scikit-learn's
                  TfidfVectorizer with sublinear_tf=True and its default token pattern.  The
                  text is a record's `text` (kiln tokenize --keep), else its byte tokens
                  (a --bytes stream: what the model saw, truncation included)

  usage: bench/embed_baseline.py (--pixels | --tfidf CORPUS.rec) < IN.rec > OUT.rec

Reads a record stream on stdin (a file kiln wrote), writes hdr, one embedding record per
input record that has an image (or text), and eos.  Needs /usr/bin/python3 with numpy and
msgpack.  Exit 2 on usage, 65 on input it cannot read."""
import collections
import hashlib
import math
import re
import sys

import msgpack
import numpy as np

LIMITS = dict(max_map_len=1024, max_array_len=1024, max_buffer_size=256 << 20)
WORD = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's default token pattern


def die(code, msg):
    print(f"embed_baseline: {msg}", file=sys.stderr)
    sys.exit(code)


def records(f):
    try:
        yield from msgpack.Unpacker(f, raw=False, **LIMITS)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as e:
        die(65, f"unreadable record stream: {e}")


def tensor(v):
    return isinstance(v, dict) and set(v) == {"dtype", "shape", "data"}


def pixels(rec):
    im = rec.get("image")
    if not tensor(im) or im["dtype"] != "U8":
        return None
    return np.frombuffer(im["data"], np.uint8).astype(np.float32)


def words(text):
    return WORD.findall(text.lower())


def text_of(rec, byte_tokens):
    """The record's text, or its tokens' bytes when the stream is byte-tokenized."""
    if isinstance(rec.get("text"), str):
        return rec["text"]
    t = rec.get("tokens")
    if byte_tokens and tensor(t) and t["dtype"] == "I32":
        ids = np.frombuffer(t["data"], "<i4")
        return bytes(int(i) for i in ids if i < 256).decode("utf-8", "replace")
    return None


def is_bytes(hdr):
    tok = hdr.get("tokenizer") if isinstance(hdr, dict) else None
    return isinstance(tok, dict) and tok.get("kind") == "bytes"


def fit_idf(path):
    """Vocabulary and smoothed IDF over the corpus file's texts (scikit-learn's smooth_idf)."""
    df, n, byte_tokens = collections.Counter(), 0, False
    try:
        f = open(path, "rb")
    except OSError as e:
        die(65, f"{path}: {e.strerror}")
    with f:
        for rec in records(f):
            if rec.get("t") == "hdr":
                byte_tokens = is_bytes(rec)
            text = text_of(rec, byte_tokens) if rec.get("t") in ("tokens", "sample") else None
            if text is not None:
                df.update(set(words(text)))
                n += 1
    if not n:
        die(65, f"{path}: no records with a text (tokenize with --keep, or --bytes)")
    vocab = {w: i for i, w in enumerate(sorted(df))}
    idf = np.array([math.log((1 + n) / (1 + df[w])) + 1 for w in sorted(df)], np.float32)
    return vocab, idf


def tfidf(rec, vocab, idf, byte_tokens):
    text = text_of(rec, byte_tokens)
    if text is None:
        return None
    v = np.zeros(len(idf), np.float32)
    for w, c in collections.Counter(words(text)).items():
        if w in vocab:
            v[vocab[w]] = (1 + math.log(c)) * idf[vocab[w]]
    return v


def main():
    a = sys.argv[1:]
    if a == ["--pixels"]:
        name, vector = "pixels", pixels
    elif len(a) == 2 and a[0] == "--tfidf":
        vocab, idf = fit_idf(a[1])
        digest = hashlib.sha1("\n".join(vocab).encode()).hexdigest()[:16]
        name, vector = f"tfidf-{digest}", lambda r: tfidf(r, vocab, idf, byte_tokens)
    else:
        die(2, "usage: embed_baseline.py (--pixels | --tfidf CORPUS.rec) < IN.rec > OUT.rec")
    out, seq, hdr, byte_tokens = sys.stdout.buffer, 0, None, False
    pack = msgpack.Packer(use_bin_type=True)
    for rec in records(sys.stdin.buffer):
        t = rec.get("t")
        if t == "hdr":
            byte_tokens = is_bytes(rec)
            hdr = {k: v for k, v in rec.items() if k not in ("tokenizer", "classes")}
            hdr.update(t="hdr", seq=0, stage="embed_baseline", schema="embedding",
                       chain=list(rec.get("chain", [])) + ["embed_baseline"], model_hash=name,
                       pool=name)
            continue
        if t == "eos" or t is None or hdr is None:
            continue
        v = vector(rec)
        if v is None:
            continue
        if seq == 0:
            hdr["dim"] = len(v)
            out.write(pack.pack(hdr))
        norm = float(np.linalg.norm(v))
        v = v / norm if norm > 0 else v
        e = {k: x for k, x in rec.items() if k not in ("image", "tokens", "mask") and not tensor(x)}
        seq += 1
        e.update(t="embedding", seq=seq,
                 embedding={"dtype": "F32", "shape": [len(v)], "data": v.astype("<f4").tobytes()})
        out.write(pack.pack(e))
    if hdr is None:
        die(65, "no hdr: not a kiln record stream")
    if seq == 0:
        die(65, "no record with an image or a text")
    out.write(pack.pack({"t": "eos", "seq": seq + 1, "count": seq, "status": "ok"}))


if __name__ == "__main__":
    main()
