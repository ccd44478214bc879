"""LaTen step 1, Locate: static neuron attribution on one example's last answer token (LaTen's code).

After Yu & Ananiadou (EMNLP 2024) as LaTen uses it. For one (prompt, answer) the input is prompt + answer
minus its last token and the *target* is that last token (after dropping trailing ``. " space ) \\n , ]``);
only the last position is analysed. With the fixed normaliser sigma of the final layer's output h there
(:func:`normaliser`: sqrt(std(h)), as the reference code computes it, not the RMS that the final norm uses),

    log p(v) = log_softmax(lm_head(w_norm * v / sigma))[target],

and every score is a gain in log p over a base vector of the residual stream:

* attention layer l: log p(x_in + attn_out) - log p(x_in); FFN layer l: log p(x_mid + ffn_out) - log p(x_mid),
  with x_mid = x_in + attn_out the residual after attention;
* FFN neuron i: log p(x_mid + c_i down[:, i]) - log p(x_mid), c_i = SiLU(gate_i x) up_i x;
* attention "neuron" (o_proj input dim d = (head h, dim j)): the last query's attention weight on the *last key
  only* times that key's value, through o_proj's column d, scored against x_in (a quirk of the reference
  code, kept).

Everything is read through forward hooks on an unmodified Hugging Face model (no patched modeling file);
the attention weights come from the eager attention, switched on for the one forward pass.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from pkt.data.records import is_reference, prompt_and_response, reference_chat, reference_prompt, turns
from pkt.layers.importance import decoder_layers, layer_input

TRAILING = '. ")\n,]'  # characters dropped from the end of an answer before its last token is taken
CHUNK = 1024  # candidate vectors projected to the vocabulary at once


@dataclass
class Attribution:
    """Scores of one example in one model: layers [L], FFN neurons [L, I], attention dims [L, H * d_head]."""

    attn_layers: torch.Tensor
    ffn_layers: torch.Tensor
    ffn_neurons: torch.Tensor
    attn_dims: torch.Tensor
    target: int


def attribution_input(record: Mapping[str, Any], tokenizer, max_length: int, *, train_on_inputs: bool = False
                      ) -> tuple[torch.Tensor, int]:
    """(input ids [1, T], target id) of a record: prompt + stripped answer minus its last token, that token.

    A toy record's prompt is encoded as everywhere else (:func:`pkt.data.records.encode_supervised`: the
    tokenizer's own special tokens, a Llama BOS included), the answer without. A reference-format record
    (:func:`pkt.data.records.is_reference`) is encoded as LaTen's locate step encodes it: its ``user_prompt``
    and ``response`` (utils/utils.py:107-108, :func:`~pkt.data.records.reference_chat` split after the assistant
    header), the response stripped, tokenised whole with no BOS (knowledge_neurons.py:99-104 with the tokenizer
    of train_LaTen.py:123-128). Longer inputs keep their last ``max_length`` tokens: only the last position is
    analysed. ``train_on_inputs`` (LaTen's MMLU setting) changes nothing here: the locate step reads the same
    prompt and answer whatever the LM loss is taken over.
    """
    if is_reference(record):
        return _reference_attribution_input(record, tokenizer, max_length)
    prompt, answer = prompt_and_response(record)
    answer = answer.rstrip(TRAILING)
    p = tokenizer(prompt)["input_ids"]
    a = tokenizer(answer, add_special_tokens=False)["input_ids"] if answer else []
    if not a:
        raise ValueError(f"record {record.get('id')!r}: the answer has no token left after dropping {TRAILING!r}")
    ids = (p + a)[:-1][-max_length:]
    return torch.tensor([ids], dtype=torch.long), a[-1]


def _reference_attribution_input(record: Mapping[str, Any], tokenizer, max_length: int) -> tuple[torch.Tensor, int]:
    """:func:`attribution_input` of a reference-format record (its docstring)."""
    user, assistant = turns(record)
    prompt = reference_prompt(user)
    answer = reference_chat(user, assistant)[len(prompt) :].rstrip(TRAILING)
    if not answer:
        raise ValueError(f"record {record.get('id')!r}: the answer has no token left after dropping {TRAILING!r}")
    ids = tokenizer(prompt + answer, add_special_tokens=False)["input_ids"]
    return torch.tensor([ids[:-1][-max_length:]], dtype=torch.long), ids[-1]


@contextlib.contextmanager
def eager_attention(model: nn.Module) -> Iterator[None]:
    """Run ``model`` with the eager attention (which returns its weights) inside the block."""
    old = model.config._attn_implementation
    if old == "eager":
        yield
        return
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(old)


def head_dim(config) -> int:
    """Width of one attention head: ``head_dim`` where the config sets it, else hidden size / heads."""
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def _last(x: torch.Tensor) -> torch.Tensor:
    return x[0, -1].detach().float()


def normaliser(final: torch.Tensor) -> torch.Tensor:
    """sigma = sqrt(std + 1e-6), std = sqrt(centred variance + 1e-5) of the final layer's output ``final`` [D].

    The reference divides by this, not by the RMS: knowledge_neurons/knowledge_neurons.py:111 (layers; :177 and
    :240 for the FFN neurons and attention dims) computes ``final_var = (torch.var(h, unbiased=False) + 1e-5) **
    0.5``, a standard deviation, and knowledge_neurons/utils.py:14 (``get_bsvalues_llama``) scales every vector
    by ``torch.rsqrt(final_var + 1e-6)`` before the norm weight and the LM head (Neural_Incompatibility at
    bba32ea). Followed as written: it sets the softmax temperature of every score, hence which layers and units
    rank first.
    """
    std = torch.sqrt(final.float().var(unbiased=False) + 1e-5)
    return torch.sqrt(std + 1e-6)


@torch.no_grad()
def attribute(model: nn.Module, input_ids: torch.Tensor, target: int) -> Attribution:
    """The module docstring's scores for one example (``input_ids`` [1, T]) in ``model`` (a plain HF model)."""
    cfg = model.config
    blocks = decoder_layers(model)
    n_heads, n_kv = cfg.num_attention_heads, cfg.num_key_value_heads
    d_head = head_dim(cfg)
    seen: dict[tuple[str, int], torch.Tensor] = {}
    handles = []

    def keep(key: str, i: int, fn):
        return lambda *hook_args: seen.__setitem__((key, i), fn(*hook_args))

    for i, block in enumerate(blocks):
        handles += [
            block.register_forward_pre_hook(keep("x_in", i, lambda _m, a, k: _last(layer_input(a, k))),
                                            with_kwargs=True),
            block.self_attn.register_forward_hook(keep("attn", i, lambda _m, _a, out: _last(out[0]))),
            block.self_attn.register_forward_hook(keep("weights", i, lambda _m, _a, out: out[1][0, :, -1, -1])),
            block.self_attn.v_proj.register_forward_hook(keep("v", i, lambda _m, _a, out: _last(out))),
            block.mlp.register_forward_hook(keep("ffn", i, lambda _m, _a, out: _last(out))),
            block.mlp.down_proj.register_forward_pre_hook(keep("coef", i, lambda _m, a: _last(a[0]))),
        ]
    norm = model.get_decoder().norm
    handles.append(norm.register_forward_pre_hook(keep("final", 0, lambda _m, a: _last(a[0]))))
    was_training = model.training
    model.eval()
    try:
        with eager_attention(model):
            model(input_ids=input_ids.to(next(model.parameters()).device), use_cache=False)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

    final = seen[("final", 0)]
    scale = norm.weight.detach().float() / normaliser(final)
    head = model.get_output_embeddings().weight.detach().float()

    def logp(vectors: torch.Tensor) -> torch.Tensor:
        """log p(target) of each row of ``vectors`` [N, D] under the fixed normaliser."""
        out = [torch.log_softmax((chunk * scale) @ head.T, dim=-1)[:, target] for chunk in vectors.split(CHUNK)]
        return torch.cat(out)

    attn_layers, ffn_layers, ffn_neurons, attn_dims = [], [], [], []
    for i, block in enumerate(blocks):
        x_in, attn_out, ffn_out = seen[("x_in", i)], seen[("attn", i)], seen[("ffn", i)]
        x_mid = x_in + attn_out
        base_in, base_mid = logp(x_in[None]), logp(x_mid[None])
        attn_layers.append(logp((x_in + attn_out)[None]) - base_in)
        ffn_layers.append(logp((x_mid + ffn_out)[None]) - base_mid)
        down = block.mlp.down_proj.weight.detach().float()  # [D, I]
        ffn_neurons.append(logp(x_mid[None] + seen[("coef", i)][:, None] * down.T) - base_mid)
        weights = seen[("weights", i)].float()  # [H]: the last query's weight on the last key
        values = seen[("v", i)].view(n_kv, d_head).repeat_interleave(n_heads // n_kv, dim=0)  # [H, d_head]
        per_dim = (weights[:, None] * values).reshape(-1)  # [H * d_head], o_proj's input at the last key
        o_cols = block.self_attn.o_proj.weight.detach().float()  # [D, H * d_head]
        attn_dims.append(logp(x_in[None] + per_dim[:, None] * o_cols.T) - base_in)
    return Attribution(torch.cat(attn_layers), torch.cat(ffn_layers), torch.stack(ffn_neurons),
                       torch.stack(attn_dims), target)


def top_layers(scores: torch.Tensor, n: int) -> list[int]:
    """The ``n`` best-scoring layers (0-indexed), sorted by depth (LaTen pairs the i-th with the i-th)."""
    return sorted(scores.topk(min(n, scores.numel())).indices.tolist())


def top_units(scores: torch.Tensor, layers: list[int], n: int) -> torch.Tensor:
    """[len(layers), n] indices of the ``n`` best units in each of ``layers``, best first."""
    if n > scores.shape[1]:
        raise ValueError(f"{n} units asked of a layer with {scores.shape[1]}")
    return torch.stack([scores[layer].topk(n).indices for layer in layers])
