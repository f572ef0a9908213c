"""Commands for the dose: train, eval, and the trait reward model (reward train / reward eval)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.store import DEFAULT_STORE, Store
from traitdose.console import StoreOpt, clean_errors, console, err_console

app = typer.Typer(no_args_is_help=True)
reward_app = typer.Typer(
    help="The trait reward model: a Bradley–Terry head on the MiniLM encoder.", no_args_is_help=True
)
app.add_typer(reward_app, name="reward")


def _bar() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )


@app.command("train")
@clean_errors
def train(
    dataset: Annotated[str, typer.Argument(help="DATASET@vN: the trait pairs (its train split).")],
    model: Annotated[str, typer.Option("--model", help="Base model: a local folder or a Hub name.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder: model, checkpoints, log.jsonl.")],
    store: StoreOpt = DEFAULT_STORE,
    dose: Annotated[int | None, typer.Option("--dose", help="N pairs, stratified by domain × trait.")] = None,
    dose_fraction: Annotated[
        float | None, typer.Option("--dose-fraction", help="Share of the pairs.")
    ] = None,
    mix: Annotated[
        str | None, typer.Option("--mix", help="OTHER@vM:SHARE — blend the dose into another set.")
    ] = None,
    loss: Annotated[str, typer.Option("--loss", help="sigmoid | ipo | robust")] = "sigmoid",
    beta: Annotated[float, typer.Option("--beta")] = 0.1,
    label_smoothing: Annotated[
        float, typer.Option("--label-smoothing", help="Robust/cDPO noise rate.")
    ] = 0.0,
    lora: Annotated[int | None, typer.Option("--lora", help="LoRA rank; full fine-tune when absent.")] = None,
    epochs: Annotated[int, typer.Option("--epochs")] = 1,
    lr: Annotated[float, typer.Option("--lr")] = 5e-6,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 8,
    grad_accum: Annotated[int, typer.Option("--grad-accum")] = 1,
    max_length: Annotated[int, typer.Option("--max-length")] = 512,
    gradient_checkpointing: Annotated[
        bool, typer.Option("--gradient-checkpointing", help="Trade compute for activation memory.")
    ] = False,
    save_every: Annotated[int | None, typer.Option("--save-every", help="Checkpoint every N steps.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the latest checkpoint.")] = False,
    reference: Annotated[
        str | None, typer.Option("--reference", help="Reference model (default: the base model).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    device: Annotated[str | None, typer.Option("--device", help="cpu, cuda, cuda:1 (default: auto).")] = None,
) -> None:
    """DPO-train a model on a dose of trait pairs; report held-out pair accuracy."""
    from trainer.config import config_from_options
    from trainer.data import training_set
    from trainer.models import load_causal_lm
    from trainer.trainer import DPOTrainer

    config = config_from_options(
        loss=loss,
        beta=beta,
        label_smoothing=label_smoothing,
        lora_r=lora,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        grad_accum=grad_accum,
        max_length=max_length,
        dose=dose,
        dose_fraction=dose_fraction,
        mix=mix,
        seed=seed,
        save_every=save_every,
        gradient_checkpointing=gradient_checkpointing,
        device=device,
    )
    pairs, held_out = training_set(Store(store), dataset, config)
    policy, tokenizer = load_causal_lm(model)
    ref_model = load_causal_lm(reference)[0] if reference else None
    console.print(f"training on {pairs.height} pairs ({_counts(pairs)}) → {out}", highlight=False)
    with _bar() as bar:
        tasks: dict[str, Any] = {}

        def on_progress(phase: str, done: int, total: int, m: dict[str, float]) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total, stats="")
            stats = f"loss {m['loss']:.4f}  margin {m['margin']:+.3f}  acc {m['accuracy']:.2f}" if m else ""
            if phase == "train":
                bar.update(tasks[phase], completed=done, stats=stats)
            else:
                bar.update(tasks[phase], advance=done)

        trainer = DPOTrainer(policy, tokenizer, config, out, reference=ref_model, on_progress=on_progress)
        result = trainer.train(pairs, held_out=held_out, resume=resume)
    final = result.final
    if final:
        console.print(
            f"step {result.steps}: loss {final['loss']:.4f}, margin {final['margin']:+.4f}, "
            f"pair accuracy {final['accuracy']:.3f}",
            highlight=False,
        )
    if result.held_out:
        from trainer.evaluate import markdown

        console.print("held-out (test split):\n" + markdown(result.held_out), highlight=False, markup=False)
    console.print(f"wrote {out} (log: {out / 'log.jsonl'})", highlight=False)


def _counts(frame) -> str:
    counts = frame.group_by("domain", "trait").len().sort("domain", "trait")
    return ", ".join(f"{d}/{t}: {n}" for d, t, n in counts.iter_rows())


@app.command("eval")
@clean_errors
def evaluate_cmd(
    model: Annotated[str, typer.Option("--model", help="The trained model (folder or Hub name).")],
    dataset: Annotated[str, typer.Option("--dataset", help="DATASET@vN[:split] (default split: test).")],
    reference: Annotated[str | None, typer.Option("--reference", help="Reference model.")] = None,
    store: StoreOpt = DEFAULT_STORE,
    beta: Annotated[float, typer.Option("--beta")] = 0.1,
    max_length: Annotated[int, typer.Option("--max-length")] = 512,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 8,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the report here.")] = None,
    device: Annotated[str | None, typer.Option("--device")] = None,
) -> None:
    """Implicit-reward pair accuracy and mean margin, per domain and per trait."""
    from trainer.data import read_pairs
    from trainer.evaluate import evaluate, markdown
    from trainer.models import load_causal_lm

    frame = read_pairs(Store(store), dataset, default_split="test")
    policy, tokenizer = load_causal_lm(model)
    ref_model = load_causal_lm(reference)[0] if reference else None
    with _bar() as bar:
        task = bar.add_task("scoring", total=frame.height, stats="")
        report = evaluate(
            policy,
            tokenizer,
            frame,
            reference=ref_model,
            beta=beta,
            max_length=max_length,
            batch_size=batch_size,
            device=device,
            tick=lambda n: bar.update(task, advance=n),
        )
    report.update(model=model, dataset=dataset)
    if json_out:
        json_out.write_text(json.dumps(report, indent=2) + "\n")
    console.print(markdown(report), highlight=False, markup=False)
    console.print_json(json.dumps(report))


@reward_app.command("train")
@clean_errors
def reward_train(
    dataset: Annotated[str, typer.Argument(help="DATASET@vN[:split] to train on (default split: train).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for reward_head.json.")],
    store: StoreOpt = DEFAULT_STORE,
    l2: Annotated[float, typer.Option("--l2", help="L2 penalty on the head.")] = 1e-3,
    steps: Annotated[int, typer.Option("--steps", help="Full-batch optimizer steps.")] = 300,
    shuffle_labels: Annotated[
        bool, typer.Option("--shuffle-labels", help="Baseline: train on randomly flipped pairs.")
    ] = False,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Train the Bradley–Terry head on one dataset's pairs."""
    from trainer.data import read_pairs
    from trainer.reward import Encoder, RewardHead, pairwise_report

    frame = read_pairs(Store(store), dataset)
    encoder = Encoder()
    pairs = _embed(frame, encoder, dataset)
    head = RewardHead.fit(pairs, l2=l2, steps=steps, seed=seed, shuffle_labels=shuffle_labels)
    head.meta["trained_on"] = dataset
    path = head.save(out)
    report = pairwise_report(head.margins(pairs), pairs)["overall"]
    console.print(
        f"trained on {report['pairs']} pairs: train pair accuracy {report['accuracy']:.3f} → {path}",
        highlight=False,
    )


@reward_app.command("eval")
@clean_errors
def reward_eval(
    datasets: Annotated[
        list[str], typer.Argument(help="DATASET@vN[:split] (default split: test), one or more.")
    ],
    head: Annotated[Path, typer.Option("--head", help="Folder (or file) of a trained reward head.")],
    store: StoreOpt = DEFAULT_STORE,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the report here.")] = None,
) -> None:
    """Pairwise accuracy of a reward head on other datasets, beside zero-shot cosine."""
    from trainer.data import read_pairs
    from trainer.reward import Encoder, RewardHead, pairwise_report

    model = RewardHead.load(head)
    encoder = Encoder()
    s = Store(store)
    table = Table(title=f"reward head {head} (trained on {model.meta.get('trained_on', '?')})")
    for column in ("dataset", "pairs", "head accuracy", "head margin", "zero-shot cosine"):
        table.add_column(
            column, justify="right" if column != "dataset" else "left", no_wrap=column == "dataset"
        )
    reports = {}
    for ref in datasets:
        frame = read_pairs(s, ref, default_split="test")
        pairs = _embed(frame, encoder, ref)
        result = pairwise_report(model.margins(pairs), pairs)
        result["zero_shot_cosine"] = pairwise_report(pairs.cosine_margins(), pairs)["overall"]
        reports[ref] = result
        o = result["overall"]
        table.add_row(
            ref, str(o["pairs"]), f"{o['accuracy']:.3f}", f"{o['margin']:+.3f}",
            f"{result['zero_shot_cosine']['accuracy']:.3f}",
        )  # fmt: skip
    console.print(table)
    if json_out:
        json_out.write_text(json.dumps(reports, indent=2) + "\n")


def _embed(frame, encoder, name: str):
    from trainer.reward import PairEmbeddings

    with _bar() as bar:
        task = bar.add_task(f"embedding {name}", total=None, stats="")
        return PairEmbeddings.of(frame, encoder, tick=lambda n: bar.update(task, advance=n))
