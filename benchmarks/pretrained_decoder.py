"""The default GRU decoder against SmolLM2-135M trained frozen, with LoRA and in full, at equal
wall time (issue 35).

    python benchmarks/pretrained_decoder.py [--time 600] [--threads 2] [--corpus yelp roc]
                                            [--decoders gru smollm2_lora ...] [--samples 500]
                                            [--steps N] [--curve-points 8] [--add]
    python benchmarks/pretrained_decoder.py --cures "word dropout 0.6" ... [--steps N]

Each decoder trains for `--time` seconds (`train.max_time`) in a child `train.py` on `--threads`
torch threads, so its peak resident memory is its own. Yelp: sentiment.test.* with 10% of the
labels (2 modes: complaint, praise), validated and scored on dev sentences; ROCStories: each
five-sentence story one unit, scored on the 300 held-out stories. Recorded per run: `evaluate`'s
figures (held-out BLEU, samples in their own mode, the n-gram judge's ratio, and the LM judge's
fluent share, perplexity ratio and copy rate where this version of `evaluate` gives them), the
reconstruction of 50 hand-written sentences that are in no corpus (data/
handwritten_sentences.txt: BLEU, and MiniLM similarity where the minilm extra is installed),
Yelp's transfer of dev complaints to praise, training tokens per second, peak memory, and the
curve against training time: the validation figures, and held-out and hand-written BLEU of the
weights train.py kept at each validation (copied as it saves them, scored after the run).
Samples are the decoder's alone (generation.lm=null): no LM reranks them.

On a machine shared with other work, --steps N trains each decoder for N steps instead
(train.max_time=null), the steps a quiet run of --time seconds made; the curve then gives each
point's share of those seconds. Writes results/pretrained_decoder.json (or --out) after every
run; --add keeps the other decoders of an earlier OUT.json, so decoders can train side by side.
--cures trains smollm2_lora with each cure for a decoder that ignores z (CURES) and records its
validation figures alone: code_gain (nats per token the right code saves), mode_agreement.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch
from lib.corpora import held_out, rocstories_jsonl, yelp_jsonl
from lib.paths import CONFIGS, RESULTS, ROOT
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
# the known cures for a strong decoder that ignores z, each over smollm2_lora's arguments
CURES = {
    "as configured": [],
    "word dropout 0.6": ["model.word_dropout=0.6"],
    "memory injection only": ["model.z_injection=memory"],
    "embedding injection only": ["model.z_injection=embedding"],
    "regulariser weight 3": ["regularizer.weight=3"],
    "gaussian latent": ["model.latent=gaussian", "model.logvar_penalty=0.1"],
}
CORPORA = {  # name: (training file, held-out file, train.py arguments)
    "yelp": lambda: (yelp_jsonl("test"), yelp_jsonl("dev"),
                     ["data.label_field=label", "data.labeled_fraction=0.1"]),
    "roc": lambda: (*rocstories_jsonl(), []),
}
# evaluate's figures kept per run; the LM judge's keys only where evaluate gives them
SAMPLE_KEYS = ["clean_rate", "judge_ppl_ratio", "lm_fluent", "lm_ppl_ratio", "copy_rate"]


def reconstruction_bleu(model: TextWAE, texts: list[str]) -> tuple[float, list[str]]:
    """Greedy reconstructions of `texts` and their corpus BLEU to them."""
    outputs, _ = generation.reconstruct(
        model, texts, generation.DecodingConfig(greedy=True, max_length=48))
    return corpus_bleu(outputs, texts)[0], outputs


def handwritten(model: TextWAE, judge: EmbeddingJudge | None) -> dict:
    """Greedy reconstruction of the hand-written sentences: BLEU and MiniLM similarity."""
    sentences = HANDWRITTEN.read_text(encoding="utf-8").splitlines()
    bleu, outputs = reconstruction_bleu(model, sentences)
    return {"n": len(sentences), "bleu": bleu,
            "minilm_similarity": judge.similarity(outputs, sentences) if judge else None,
            "examples": [{"input": a, "output": b}
                         for a, b in zip(sentences[:5], outputs[:5], strict=True)]}


def examples_by_mode(model: TextWAE, n: int = 10) -> dict[str, list[str]]:
    """`n` samples of each mode, decoded as the run's generation: section says, to be read."""
    decoding = generation.DecodingConfig.of(model.config.generation)
    names = {component: label for label, component in (model.label_map() or {}).items()}
    return {names.get(component, str(component)):
            generation.sample(model, n, decoding, mode=component, seed=component)[0]
            for component in range(model.prior.components)}


class Snapshots:
    """Copies of the weights train.py keeps (it saves at each validation that beats the best),
    taken while it trains, so that the curve of BLEU against training time is scored after."""

    def __init__(self, run: Path) -> None:
        self.run, self.folder = run, run.with_name(f"{run.name}-snapshots")
        shutil.rmtree(self.folder, ignore_errors=True)
        self.seen: int | None = None

    def __call__(self) -> None:
        weights, log = self.run / "model.safetensors", self.run / "metrics.jsonl"
        # train.py saves the weights it starts from before it validates
        if not log.is_file() or weights.stat().st_mtime_ns == self.seen:
            return
        valid = read_metrics(log).get("valid")
        if not valid:
            return
        self.seen = weights.stat().st_mtime_ns
        best = min(valid, key=lambda record: record["loss"])
        target = self.folder / f"step-{best['step']:07d}"
        target.mkdir(parents=True, exist_ok=True)
        for path in self.run.iterdir():  # not the resumable state, the log, or the lock
            if path.name in ("state", "metrics.jsonl") or path.name.startswith("."):
                continue
            if path.is_dir():
                shutil.copytree(path, target / path.name, dirs_exist_ok=True)
            else:
                shutil.copy2(path, target / path.name)
        (target / "valid.json").write_text(json.dumps(best), encoding="utf-8")

    def curve(self, held: list[str], steps: int | None, seconds: float) -> list[dict]:
        """Held-out and hand-written BLEU of each copy, with its step and training time."""
        sentences = HANDWRITTEN.read_text(encoding="utf-8").splitlines()
        points = []
        for folder in sorted(self.folder.glob("step-*")):
            record = json.loads((folder / "valid.json").read_text(encoding="utf-8"))
            model = TextWAE.from_pretrained(folder)
            points.append({
                "step": record["step"], "elapsed": record["elapsed"],
                "quiet_seconds": record["step"] / steps * seconds if steps else None,
                "bleu": reconstruction_bleu(model, held)[0],
                "handwritten_bleu": reconstruction_bleu(model, sentences)[0]})
        return points


def train_arguments(corpus: str, args) -> list[str]:
    """train.py's arguments for `corpus` at the budget (--time or --steps) and threads asked."""
    train_path, valid_path, labels = CORPORA[corpus]()
    budget = ([f"train.max_steps={args.steps}", "train.max_time=null",
               f"train.eval_every={max(1, args.steps // args.curve_points)}"] if args.steps else
              [f"train.max_time={args.time}", "train.max_steps=1000000",
               f"train.eval_every={args.eval_every}"])
    return [f"data.train={train_path}", f"data.valid={valid_path}", *labels,
            f"train.num_threads={args.threads}", *budget, "train.eval_batches=10",
            "train.checkpoint_every=1000000", "generation.lm=null"]


def cure_one(name: str, corpus: str, args) -> dict:
    """Train smollm2_lora with one cure; its validation figures say how much z is read."""
    run = fresh_run_dir(f"pretrained-decoder-cure-{corpus}-{name.replace(' ', '-')}")
    usage = train_in_child(run, [*DECODERS["smollm2_lora"], *CURES[name],
                                 *train_arguments(corpus, args)])
    valid = read_metrics(run)["valid"]
    print(json.dumps({"cure": name, **valid[-1]}), file=sys.stderr)
    return {"arguments": CURES[name], "steps": valid[-1]["step"], "final": valid[-1],
            "peak_rss_mib": round(usage.ru_maxrss / 1024),
            "validation": [{key: record[key] for key in record if key != "split"}
                           for record in valid]}


def run_one(name: str, corpus: str, args, judge: EmbeddingJudge | None) -> dict:
    """Train one decoder on one corpus in a child process, then score the run here."""
    train_path, valid_path, _ = CORPORA[corpus]()
    run = fresh_run_dir(f"pretrained-decoder-{corpus}-{name}")
    snapshots = Snapshots(run)
    started = time.perf_counter()
    usage = train_in_child(run, [*DECODERS[name], *train_arguments(corpus, args)],
                           while_running=snapshots)
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
        "sample_examples": examples_by_mode(model),
        "handwritten": handwritten(model, judge),
        "validation": [{key: record[key] for key in record if key != "split"}
                       for record in valid],
        "curve": snapshots.curve([e.text for e in held_out(valid_path, args.curve_held_out)],
                                 args.steps, args.time),
    }
    if corpus == "yelp":
        result["transfer"] = transfer_figures(run, train_examples, valid_path)
    print(json.dumps({"corpus": corpus, "decoder": name, "bleu": result["bleu"],
                      "steps": result["steps"]}), file=sys.stderr)
    return result


def merged(out: str, result: dict) -> dict:
    """`result` over the decoders an earlier OUT.json holds that this run did not train."""
    path = RESULTS / f"{out}.json"
    earlier = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    for key in [*CORPORA, "cures"]:
        if key in earlier:
            result[key] = {**earlier[key], **result.get(key, {})}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time", type=float, default=600, help="train.max_time per run")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of each run")
    parser.add_argument("--steps", type=int, default=None,
                        help="train this many steps instead: those a quiet --time run made")
    parser.add_argument("--corpus", nargs="+", choices=list(CORPORA), default=list(CORPORA))
    parser.add_argument("--decoders", nargs="+", choices=list(DECODERS), default=list(DECODERS))
    parser.add_argument("--samples", type=int, default=500, help="evaluate's samples")
    parser.add_argument("--held-out", type=int, default=1000,
                        help="held-out units evaluate scores")
    parser.add_argument("--curve-held-out", type=int, default=200,
                        help="held-out units each point of the curve reconstructs")
    parser.add_argument("--eval-every", type=int, default=50,
                        help="steps between validations (the curve's points) of a --time run")
    parser.add_argument("--curve-points", type=int, default=8,
                        help="validations (the curve's points) of a --steps run")
    parser.add_argument("--cures", nargs="+", choices=list(CURES), default=None,
                        help="instead of --decoders: smollm2_lora with each cure for z being "
                             "ignored, scored by its validation figures (on the first corpus)")
    parser.add_argument("--add", action="store_true",
                        help="keep the other decoders of an earlier OUT.json")
    add_out_argument(parser, "pretrained_decoder")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result: dict = {"machine": machine(), "threads": args.threads, "max_time": args.time,
                    "steps": args.steps}
    if args.cures:
        corpus = args.corpus[0]
        result["cures"] = {}
        for name in args.cures:
            result["cures"][name] = {**cure_one(name, corpus, args), "corpus": corpus,
                                     "threads": args.threads, "max_time": args.time,
                                     "matched_steps": args.steps}
            write_results(args.out, merged(args.out, result) if args.add else result)
        return
    judge = EmbeddingJudge() if embedding_judge_available() else None
    for corpus in args.corpus:
        result[corpus] = {}
        for name in args.decoders:
            result[corpus][name] = {**run_one(name, corpus, args, judge),
                                    "threads": args.threads, "max_time": args.time,
                                    "matched_steps": args.steps}
            write_results(args.out, {**(merged(args.out, result) if args.add else result),
                                     "partial": True})
    final = merged(args.out, result) if args.add else result
    print(json.dumps(final, indent=2))
    print(json.dumps({"written": str(write_results(args.out, final))}))


if __name__ == "__main__":
    main()
