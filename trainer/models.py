"""Loading causal LMs and picking the device: cuda (with bf16 autocast) when present, else cpu."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch

from core.errors import SourceError


def pick_device(requested: str | None = None) -> torch.device:
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; on CPU full fp32, where bf16 matmuls are slower, not faster."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def load_causal_lm(name_or_path: str | Path) -> tuple[Any, Any]:
    """A model and its tokenizer from a local folder or a Hub name (cached or downloadable)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = str(name_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source)
    except OSError as exc:
        raise SourceError(f"cannot load model {source!r}: {exc}") from exc
    return model, tokenizer
