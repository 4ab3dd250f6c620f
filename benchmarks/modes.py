"""Do the modes mean something? Yelp sentences, praise vs complaint, with 10% of the labels.

    python benchmarks/modes.py [--time 600] [--labeled-fraction 0.1]

Three figures, from one script run:
1. label-guided: train the default GRU WAE on sentiment.test.* with `data.labeled_fraction`
   of the labels (2 modes: complaint, praise) and report `evaluate` on 1,000 dev sentences:
   mode_accuracy is the share of 500 samples per mode that an independent judge (TF-IDF
   logistic regression on all training labels) reads as that mode's label;
2. unlabelled: the same with no labels at all: the NMI between modes and sentiment;
3. transfer: 500 complaint dev sentences moved to the praise mode of model 1: the judge's
   praise rate and the BLEU of the outputs to their inputs (content kept).
Writes results/modes.json.
"""

from __future__ import annotations

import argparse
import json

import torch
from lib.corpora import held_out, yelp_jsonl
from lib.paths import CONFIGS, ROOT
from lib.results import add_out_argument, write_results
from lib.runs import train_and_evaluate

from textwae import generation
from textwae.evaluation.metrics import LabelJudge, corpus_bleu
from textwae.models.autoencoder import TextWAE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time", type=float, default=600, help="train.max_time per model")
    parser.add_argument("--labeled-fraction", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-unlabelled", action="store_true")
    add_out_argument(parser, "modes")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train_path, valid_path = yelp_jsonl("test"), yelp_jsonl("dev")
    train_examples = held_out(train_path, 10**9)
    evaluation = held_out(valid_path, 1000)
    base = [f"data.train={train_path}", f"data.valid={valid_path}", "data.max_length=32",
            "prior.components=2", f"train.max_time={args.time}", "train.max_steps=1000000",
            "train.eval_every=500", "train.eval_batches=20", "train.checkpoint_every=1000000",
            "train.batch_size=128", "tokenizer.vocab_size=8000"]
    configs = [CONFIGS / "default.yaml"]
    labelled = train_and_evaluate(
        "modes-labelled", configs, [*base, "data.label_field=label",
                                    f"data.labeled_fraction={args.labeled_fraction}"],
        evaluation, train_examples)
    result = {"max_time": args.time, "labeled_fraction": args.labeled_fraction,
              "labelled": labelled}
    if not args.skip_unlabelled:
        result["unlabelled"] = train_and_evaluate("modes-unlabelled", configs, base, evaluation,
                                                  train_examples)
    result["transfer"] = transfer_figures(ROOT / labelled["run"], train_examples, valid_path)
    print(json.dumps({
        "labelled": {k: labelled.get(k) for k in ["bleu", "mode_accuracy", "nmi", "purity"]},
        "unlabelled_nmi": result.get("unlabelled", {}).get("nmi"),
        "transfer": result["transfer"]}, indent=2))
    print(json.dumps({"written": str(write_results(args.out, result))}))


def transfer_figures(run, train_examples, valid_path) -> dict:
    """Complaint -> praise on 500 dev complaints: the judge's praise rate, BLEU to inputs."""
    model = TextWAE.from_pretrained(run)
    judge = LabelJudge().fit([e.text for e in train_examples],
                             [e.label for e in train_examples])
    complaints = [e.text for e in held_out(valid_path, 10**9, seed=1)
                  if e.label == "complaint"][:500]
    praise = model.label_map()["praise"]
    outputs, _ = generation.transfer(model, complaints, praise,
                                     generation.DecodingConfig(greedy=True, max_length=32))
    predicted = judge.predict(outputs)
    bleu, signature = corpus_bleu(outputs, complaints)
    return {"n": len(complaints),
            "praise_rate": sum(p == "praise" for p in predicted) / len(predicted),
            "inputs_read_as_praise": sum(p == "praise" for p in judge.predict(complaints))
            / len(complaints),
            "bleu_to_inputs": bleu, "bleu_signature": signature,
            "examples": [{"input": a, "output": b} for a, b in zip(complaints[:8], outputs[:8],
                                                                     strict=True)]}


if __name__ == "__main__":
    main()
