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
    method: Annotated[
        str, typer.Option("--method", help="dpo (offline pairs) | grpo (online, rewarded).")
    ] = "dpo",
    dose: Annotated[int | None, typer.Option("--dose", help="N pairs, stratified by domain × trait.")] = None,
    dose_fraction: Annotated[
        float | None, typer.Option("--dose-fraction", help="Share of the pairs.")
    ] = None,
    mix: Annotated[
        str | None, typer.Option("--mix", help="OTHER@vM:SHARE — blend the dose into another set.")
    ] = None,
    loss: Annotated[str, typer.Option("--loss", help="sigmoid | ipo | robust")] = "sigmoid",
    beta: Annotated[
        float | None, typer.Option("--beta", help="DPO: 0.1; GRPO KL penalty: 0.04 (0: none).")
    ] = None,
    label_smoothing: Annotated[
        float, typer.Option("--label-smoothing", help="Robust/cDPO noise rate.")
    ] = 0.0,
    lora: Annotated[int | None, typer.Option("--lora", help="LoRA rank; full fine-tune when absent.")] = None,
    epochs: Annotated[int, typer.Option("--epochs")] = 1,
    lr: Annotated[float | None, typer.Option("--lr", help="DPO: 5e-6; GRPO: 1e-6.")] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Pairs (DPO: 8) or prompts (GRPO: 4) per micro-batch.")
    ] = None,
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
    num_generations: Annotated[
        int, typer.Option("--num-generations", help="GRPO: completions per prompt.")
    ] = 8,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", help="GRPO: completion length.")] = 128,
    temperature: Annotated[float, typer.Option("--temperature", help="GRPO: sampling temperature.")] = 1.0,
    epsilon: Annotated[float, typer.Option("--epsilon", help="GRPO: ratio clip range.")] = 0.2,
    steps: Annotated[int | None, typer.Option("--steps", help="GRPO: steps (default: one pass).")] = None,
    num_iterations: Annotated[int, typer.Option("--num-iterations", help="GRPO: updates per batch.")] = 1,
    reward: Annotated[
        list[str] | None,
        typer.Option("--reward", help="GRPO: verifiable | model | rubric | module:fn, each [:WEIGHT]."),
    ] = None,
    reward_head: Annotated[
        str | None, typer.Option("--reward-head", help="Reward head folder (model).")
    ] = None,
    judge_model: Annotated[str | None, typer.Option("--judge-model", help="Rubric judge LLM.")] = None,
    judge_base_url: Annotated[
        str | None, typer.Option("--judge-base-url", help="OpenAI-compatible URL.")
    ] = None,
    judge_api_key_env: Annotated[
        str | None, typer.Option("--judge-api-key-env", help="Key variable.")
    ] = None,
) -> None:
    """Train a model on a dose of trait data: DPO on pairs, or GRPO with rewards; report held-out."""
    given = {"beta": beta, "lr": lr, "batch_size": batch_size}
    given = {k: v for k, v in given.items() if v is not None}
    common = dict(
        lora_r=lora, grad_accum=grad_accum, dose=dose, dose_fraction=dose_fraction, mix=mix,
        seed=seed, save_every=save_every, gradient_checkpointing=gradient_checkpointing, device=device,
        **given,
    )  # fmt: skip
    if method == "grpo":
        from trainer.grpo_cli import print_grpo_result, train_grpo

        result = train_grpo(
            dataset, model, out, store, reference, _bar, resume=resume, num_generations=num_generations,
            max_new_tokens=max_new_tokens, temperature=temperature, epsilon=epsilon, steps=steps,
            num_iterations=num_iterations, rewards=reward or ["verifiable"], reward_head=reward_head,
            judge_model=judge_model, judge_base_url=judge_base_url, judge_api_key_env=judge_api_key_env,
            **common,
        )  # fmt: skip
        print_grpo_result(result, out)
        return
    if method != "dpo":
        raise ValueError(f"--method {method!r}: use dpo or grpo")
    _train_dpo(
        dataset, model, out, store, reference, resume, loss, label_smoothing, epochs, max_length, common
    )


def _train_dpo(
    dataset, model, out, store, reference, resume, loss, label_smoothing, epochs, max_length, common
):
    from trainer.config import config_from_options
    from trainer.data import training_set
    from trainer.models import load_causal_lm
    from trainer.trainer import DPOTrainer

    config = config_from_options(
        loss=loss, label_smoothing=label_smoothing, epochs=epochs, max_length=max_length, **common
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
    method: Annotated[
        str, typer.Option("--method", help="dpo: implicit reward; grpo: answers graded by --reward.")
    ] = "dpo",
    reward: Annotated[list[str] | None, typer.Option("--reward", help="GRPO: rewards, as for train.")] = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", help="GRPO: answer length.")] = 128,
    reward_head: Annotated[str | None, typer.Option("--reward-head", help="For --reward model.")] = None,
    judge_model: Annotated[str | None, typer.Option("--judge-model", help="For --reward rubric.")] = None,
    judge_base_url: Annotated[str | None, typer.Option("--judge-base-url")] = None,
    judge_api_key_env: Annotated[str | None, typer.Option("--judge-api-key-env")] = None,
) -> None:
    """DPO: implicit-reward pair accuracy and margin. GRPO: mean reward per kind and verifiable
    accuracy per form, domain and trait, for --reference (before) and --model (after)."""
    if method == "grpo":
        from trainer.grpo_cli import eval_grpo, write_report

        report = eval_grpo(
            model, dataset, reference, store, rewards=reward or ["verifiable"], reward_head=reward_head,
            judge_model=judge_model, judge_base_url=judge_base_url, judge_api_key_env=judge_api_key_env,
            max_new_tokens=max_new_tokens, batch_size=batch_size, device=device,
        )  # fmt: skip
        write_report(report, json_out)
        return
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
