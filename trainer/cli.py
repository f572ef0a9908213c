"""Commands for the dose: train, eval, and the trait reward model (reward train / reward eval)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.errors import OptionError
from core.store import DEFAULT_STORE, Store
from trainer.config import DPOConfig
from trainer.runs import describe_settings, eval_settings, record_run
from traitdose.console import StoreOpt, clean_errors, console, err_console, say

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


DEFAULTS = DPOConfig()  # the one place the run's defaults are declared


def config_option(name: str, *flags: str) -> Any:
    """The ``--option`` for DPOConfig field ``name``: its help from the field's description."""
    return typer.Option(
        *(flags or (f"--{name.replace('_', '-')}",)), help=DPOConfig.model_fields[name].description
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
    dose: Annotated[int | None, config_option("dose")] = DEFAULTS.dose,
    dose_fraction: Annotated[float | None, config_option("dose_fraction")] = DEFAULTS.dose_fraction,
    mix: Annotated[str | None, config_option("mix")] = None,
    loss: Annotated[str, config_option("loss")] = DEFAULTS.loss,
    beta: Annotated[
        float | None, typer.Option("--beta", help="DPO: 0.1; GRPO KL penalty: 0.04 (0: none).")
    ] = None,
    label_smoothing: Annotated[float, config_option("label_smoothing")] = DEFAULTS.label_smoothing,
    lora_r: Annotated[int | None, config_option("lora_r", "--lora")] = DEFAULTS.lora_r,
    epochs: Annotated[int, config_option("epochs")] = DEFAULTS.epochs,
    lr: Annotated[float | None, typer.Option("--lr", help="Peak LR. DPO: 5e-6; GRPO: 1e-6.")] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Pairs (DPO: 8) or prompts (GRPO: 4) per micro-batch.")
    ] = None,
    grad_accum: Annotated[int, config_option("grad_accum")] = DEFAULTS.grad_accum,
    max_length: Annotated[int, config_option("max_length")] = DEFAULTS.max_length,
    gradient_checkpointing: Annotated[
        bool, config_option("gradient_checkpointing")
    ] = DEFAULTS.gradient_checkpointing,
    save_every: Annotated[int | None, config_option("save_every")] = DEFAULTS.save_every,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the latest checkpoint.")] = False,
    reference: Annotated[
        str | None, typer.Option("--reference", help="Reference model (default: the base model).")
    ] = None,
    seed: Annotated[int, config_option("seed")] = DEFAULTS.seed,
    device: Annotated[str | None, config_option("device")] = DEFAULTS.device,
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
    given = {"beta": beta, "lr": lr, "batch_size": batch_size}  # their defaults depend on the method
    common = dict(
        lora_r=lora_r, grad_accum=grad_accum, dose=dose, dose_fraction=dose_fraction, mix=mix,
        seed=seed, save_every=save_every, gradient_checkpointing=gradient_checkpointing, device=device,
        **{k: v for k, v in given.items() if v is not None},
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
        record_run(out, dataset=dataset, model=model, reference=reference or model)
        print_grpo_result(result, out)
        return
    if method != "dpo":
        raise OptionError(f"--method {method!r}: use dpo or grpo")
    dpo = dict(loss=loss, label_smoothing=label_smoothing, epochs=epochs, max_length=max_length)
    _train_dpo(dataset, model, out, store, reference, resume, {**common, **dpo})


def _train_dpo(
    dataset: str, model: str, out: Path, store: Path, reference: str | None, resume: bool, options: dict
) -> None:
    from trainer.config import config_from_options
    from trainer.data import training_set
    from trainer.models import load_causal_lm
    from trainer.trainer import DPOTrainer

    config = config_from_options(**options)
    pairs, held_out = training_set(Store(store), dataset, config)
    policy, tokenizer = load_causal_lm(model)
    ref_model = load_causal_lm(reference)[0] if reference else None
    say(f"training on {pairs.height} pairs ({_counts(pairs)}) → {out}")
    with _bar() as bar:
        trainer = DPOTrainer(
            policy, tokenizer, config, out, reference=ref_model, on_progress=_progress_reporter(bar)
        )
        result = trainer.train(pairs, held_out=held_out, resume=resume)
    record_run(out, dataset=dataset, model=model, reference=reference or model)
    final = result.final
    if final:
        say(
            f"step {result.steps}: loss {final['loss']:.4f}, margin {final['margin']:+.4f}, "
            f"pair accuracy {final['accuracy']:.3f}"
        )
    if result.held_out:
        from trainer.evaluate import markdown

        say("held-out (test split):\n" + markdown(result.held_out))
    say(f"wrote {out} (log: {out / 'log.jsonl'})")


def _progress_reporter(bar: Progress) -> Callable[[str, int, int, dict[str, float]], None]:
    tasks: dict[str, Any] = {}

    def on_progress(phase: str, done: int, total: int, m: dict[str, float]) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(phase, total=total, stats="")
        stats = f"loss {m['loss']:.4f}  margin {m['margin']:+.3f}  acc {m['accuracy']:.2f}" if m else ""
        if phase == "train":
            bar.update(tasks[phase], completed=done, stats=stats)
        else:
            bar.update(tasks[phase], advance=done)

    return on_progress


def _counts(frame) -> str:
    counts = frame.group_by("domain", "trait").len().sort("domain", "trait")
    return ", ".join(f"{d}/{t}: {n}" for d, t, n in counts.iter_rows())


@app.command("eval")
@clean_errors
def evaluate_cmd(
    model: Annotated[str, typer.Option("--model", help="The trained model (folder or Hub name).")],
    dataset_arg: Annotated[
        str | None, typer.Argument(help="DATASET@vN[:split] (default split: test).", show_default=False)
    ] = None,
    dataset: Annotated[str | None, typer.Option("--dataset", help="Same as DATASET@vN[:split].")] = None,
    reference: Annotated[
        str | None, typer.Option("--reference", help="Reference model (default: the run's base model).")
    ] = None,
    store: StoreOpt = DEFAULT_STORE,
    beta: Annotated[float | None, typer.Option("--beta", help="Default: the run's.")] = None,
    max_length: Annotated[int | None, typer.Option("--max-length", help="Default: the run's.")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Default: the run's.")] = None,
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
    """DPO: implicit-reward pair accuracy and mean margin, per domain and per trait. GRPO: mean
    reward per kind and verifiable accuracy per form, domain and trait, for --reference (before)
    and --model (after).

    Settings not given come from the model folder's training.json (what `train` used), so
    eval scores the way the run's held-out report did; the settings used are printed."""
    ref = _one_dataset(dataset_arg, dataset)
    if method == "grpo":
        from trainer.grpo_cli import eval_grpo, write_report

        report = eval_grpo(
            model, ref, reference, store, rewards=reward or ["verifiable"], reward_head=reward_head,
            judge_model=judge_model, judge_base_url=judge_base_url, judge_api_key_env=judge_api_key_env,
            max_new_tokens=max_new_tokens, batch_size=batch_size or 8, device=device,
        )  # fmt: skip
        write_report(report, json_out)
        return
    from trainer.data import read_pairs
    from trainer.evaluate import evaluate, markdown
    from trainer.models import load_causal_lm

    if not model:
        raise OptionError("give the trained model: --model DIR")
    settings = eval_settings(
        model, beta=beta, max_length=max_length, batch_size=batch_size, reference=reference
    )
    frame = read_pairs(Store(store), ref, default_split="test")
    say(describe_settings(settings))
    policy, tokenizer = load_causal_lm(model)
    ref_model = load_causal_lm(settings["reference"])[0] if settings["reference"] else None
    with _bar() as bar:
        task = bar.add_task("scoring", total=frame.height, stats="")
        report = evaluate(
            policy,
            tokenizer,
            frame,
            reference=ref_model,
            beta=settings["beta"],
            max_length=settings["max_length"],
            prompt_budget=settings["prompt_budget"],
            batch_size=settings["batch_size"],
            device=device,
            tick=lambda n: bar.update(task, advance=n),
        )
    report.update(model=model, dataset=ref, settings=settings)
    if json_out:
        json_out.write_text(json.dumps(report, indent=2) + "\n")
    say(markdown(report))
    console.print_json(json.dumps(report))


def _one_dataset(arg: str | None, option: str | None) -> str:
    if arg and option and arg != option:
        raise OptionError(f"two datasets given: {arg!r} and --dataset {option!r}")
    if not (arg or option):
        raise OptionError("name the pairs to score: traitdose eval DATASET@vN[:split] --model DIR")
    return arg or option  # type: ignore[return-value]


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
