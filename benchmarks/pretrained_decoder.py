"""The default GRU decoder against SmolLM2-135M trained frozen, with LoRA and in full, at equal
wall time (issue 35).

    python benchmarks/pretrained_decoder.py [--time 600] [--threads 2] [--corpus yelp roc]
                                            [--decoders gru smollm2_lora ...] [--samples 500]

Each decoder trains for `--time` seconds (`train.max_time`) in a child `train.py` on `--threads`
torch threads, so its peak resident memory is its own. Yelp: sentiment.test.* with 10% of the
labels (2 modes: complaint, praise), validated and scored on dev sentences; ROCStories: each
five-sentence story one unit, scored on the 300 held-out stories. Recorded per run: `evaluate`'s
figures (held-out BLEU, samples in their own mode, the n-gram judge's ratio, and the LM judge's
fluent share, perplexity ratio and copy rate where this version of `evaluate` gives them), the
reconstruction of 50 hand-written sentences that are in no corpus (data/
handwritten_sentences.txt: BLEU, and MiniLM similarity where the minilm extra is installed),
Yelp's transfer of dev complaints to praise, training tokens per second, peak memory, and the
curve of the validation figures against training time. Writes
results/pretrained_decoder.json (or --out), after every run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from lib.corpora import held_out, rocstories_jsonl, yelp_jsonl
from lib.paths import CONFIGS, ROOT
from lib.results import add_out_argument, machine, write_results
from lib.runs import fresh_run_dir, train_in_child
from modes import transfer_figures

from textwae import generation
from textwae.evaluation.evaluate import evaluate
from textwae.evaluation.judges import EmbeddingJudge, embedding_judge_available
from textwae.evaluation.metrics import corpus_bleu
from textwae.models.autoencoder import TextWAE
from textwae.runs.metrics_log import read_metrics

HANDWRITTEN = Path(__file__).parent / "data" / "handwritten_sentences.txt"
SMOLLM2 = ["--config", str(CONFIGS / "smollm2_decoder.yaml")]
DECODERS = {  # name: train.py arguments
    "gru": [],
    "smollm2_frozen": [*SMOLLM2, "model.decoder_training=frozen"],
    "smollm2_lora": [*SMOLLM2, "model.decoder_training=lora"],
    "smollm2_full": [*SMOLLM2, "model.decoder_training=full", "train.lr=0.0002"],
}
CORPORA = {  # name: (training file, held-out file, train.py arguments)
    "yelp": lambda: (yelp_jsonl("test"), yelp_jsonl("dev"),
                     ["data.label_field=label", "data.labeled_fraction=0.1"]),
    "roc": lambda: (*rocstories_jsonl(), []),
}
# evaluate's figures kept per run; the LM judge's keys only where evaluate gives them
SAMPLE_KEYS = ["clean_rate", "judge_ppl_ratio", "lm_fluent", "lm_ppl_ratio", "copy_rate"]


def handwritten(model: TextWAE, judge: EmbeddingJudge | None) -> dict:
    """Greedy reconstruction of the hand-written sentences: BLEU and MiniLM similarity."""
    sentences = HANDWRITTEN.read_text(encoding="utf-8").splitlines()
    outputs, _ = generation.reconstruct(
        model, sentences, generation.DecodingConfig(greedy=True, max_length=48))
    bleu, _ = corpus_bleu(outputs, sentences)
    return {"n": len(sentences), "bleu": bleu,
            "minilm_similarity": judge.similarity(outputs, sentences) if judge else None,
            "examples": [{"input": a, "output": b}
                         for a, b in zip(sentences[:5], outputs[:5], strict=True)]}


def run_one(name: str, corpus: str, args, judge: EmbeddingJudge | None) -> dict:
    """Train one decoder on one corpus in a child process, then score the run here."""
    train_path, valid_path, labels = CORPORA[corpus]()
    run = fresh_run_dir(f"pretrained-decoder-{corpus}-{name}")
    started = time.perf_counter()
    usage = train_in_child(run, [
        *DECODERS[name], f"data.train={train_path}", f"data.valid={valid_path}", *labels,
        f"train.num_threads={args.threads}", f"train.max_time={args.time}",
        "train.max_steps=1000000", f"train.eval_every={args.eval_every}",
        "train.eval_batches=10", "train.checkpoint_every=1000000"])
    wall = time.perf_counter() - started
    valid = read_metrics(run)["valid"]
    model = TextWAE.from_pretrained(run)
    evaluation = held_out(valid_path, args.held_out)
    train_examples = held_out(train_path, 10**9)
    scores = evaluate(model, evaluation, train_examples, n_samples=args.samples)
    samples = scores.get("samples", {})
    result = {
        "run": str(run.relative_to(ROOT)), "wall_seconds": round(wall, 1),
        "steps": valid[-1]["step"], "peak_rss_mib": round(usage.ru_maxrss / 1024),
        "train_tokens_per_second": valid[-1].get("tokens_per_second"),
        "bleu": scores.get("bleu"), "mode_accuracy": scores.get("mode_accuracy"),
        "samples": {key: samples.get(key, scores.get(key)) for key in SAMPLE_KEYS},
        "handwritten": handwritten(model, judge),
        "curve": [{key: record[key] for key in record if key != "split"} for record in valid],
    }
    if corpus == "yelp":
        result["transfer"] = transfer_figures(run, train_examples, valid_path)
    print(json.dumps({"corpus": corpus, "decoder": name, "bleu": result["bleu"],
                      "steps": result["steps"]}), file=sys.stderr)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time", type=float, default=600, help="train.max_time per run")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of each run")
    parser.add_argument("--corpus", nargs="+", choices=list(CORPORA), default=list(CORPORA))
    parser.add_argument("--decoders", nargs="+", choices=list(DECODERS), default=list(DECODERS))
    parser.add_argument("--samples", type=int, default=500, help="evaluate's samples")
    parser.add_argument("--held-out", type=int, default=1000,
                        help="held-out units evaluate scores")
    parser.add_argument("--eval-every", type=int, default=50,
                        help="steps between validations (the curve's points)")
    add_out_argument(parser, "pretrained_decoder")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    judge = EmbeddingJudge() if embedding_judge_available() else None
    result: dict = {"machine": machine(), "threads": args.threads, "max_time": args.time}
    for corpus in args.corpus:
        result[corpus] = {}
        for name in args.decoders:
            result[corpus][name] = run_one(name, corpus, args, judge)
            write_results(args.out, {**result, "partial": True})
    print(json.dumps(result, indent=2))
    print(json.dumps({"written": str(write_results(args.out, result))}))


if __name__ == "__main__":
    main()
