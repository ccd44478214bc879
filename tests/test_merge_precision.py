"""Adapters in a bf16 evaluation (a GPU run): merged only where the merge is exact (fp32 weights), else kept
unmerged with fp32 factors, for every method's adapter; the rounding a bf16 merge does, measured."""

from __future__ import annotations

import logging

import pytest
import torch

from pkt.data.tokenizer import train_tokenizer
from pkt.data.toyworld import generate
from pkt.evaluation.evaluate import load_lm, merges_exactly, rounded_away, use_adapter
from pkt.methods import BUILTIN, LoraSettings, get_method
from pkt.models.build import llama_config, untie_output_head

ARCH = {"hidden_size": 32, "intermediate_size": 64, "num_layers": 2, "num_heads": 2, "max_position_embeddings": 64}
IDS = torch.tensor([[5, 6, 7, 8, 9, 10, 11, 12], [20, 21, 22, 23, 24, 25, 26, 27]])


def trained(model, config, seed: int, scale: float = 2e-3, start: bool = False):
    """A peft LoRA as training leaves it: B moved off zero (and A redrawn for Seeking's extracted start)."""
    from peft import get_peft_model

    peft = get_peft_model(model, config) if config is not None else model
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in peft.named_parameters():
            if "lora_B" in name or "lora_embedding_B" in name or (start and "lora_" in name):
                param.copy_(scale * torch.randn(param.shape, generator=gen))
    return peft


def laten_adapter(student, vocab: int):
    """LaTen's own adapter (:func:`pkt.methods.laten.translate.delta_adapter`) for a plan located on a tiny
    teacher, with deltas of LaTen's size: 1e-6 per entry against weights of 0.02 (the toy's LaTen adapters lose
    97% of their delta entries in a bf16 merge)."""
    from transformers import LlamaForCausalLM

    from pkt.methods.laten.locate import attribute
    from pkt.methods.laten.translate import KINDS, delta_adapter, plan, unit_counts

    torch.manual_seed(1)
    teacher = LlamaForCausalLM(llama_config({**ARCH, "hidden_size": 48, "num_layers": 4}, vocab)).eval()
    ids = IDS[:1]
    p = plan(attribute(teacher, ids, 7), attribute(student, ids, 7), *unit_counts(student, 0.25))
    gen = torch.Generator().manual_seed(4)
    width = student.config.hidden_size
    deltas = {k: 1e-6 * torch.randn(*p.student_units[k].shape, width, generator=gen) for k in KINDS}
    return delta_adapter(student, p, deltas)


def build(method: str, student, tok):
    """A tiny adapter in the form ``method`` exports: its LoRA placement, rank pattern and start."""
    if method in ("lora", "kd"):  # every module, the embedding and the head too; standard init, then trained
        strategy = get_method(method).from_dict({"r": 4, "alpha": 8})
        return trained(strategy.init_adapter(student, tok), None, seed=11)
    if method == "seeking":  # the same placement, started from extracted factors: A and B both nonzero
        return trained(student, LoraSettings(r=4, alpha=8).peft_config(), seed=12, start=True)
    if method in ("semalign", "fitnet"):  # v, o, up, down of the paired student layer only
        settings = get_method(method).config_class(r=4, alpha=8, layers=[1])
        return trained(student, settings.peft_config(), seed=13)
    return laten_adapter(student, tok)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny fp32 student and one adapter per method (``<root>/<method>``), exported as the method does."""
    from conftest import small_world
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("precision")
    tok = train_tokenizer(generate(small_world()).corpora["teacher"], vocab_size=400)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(llama_config(ARCH, tok)).save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    for method in BUILTIN:
        student = AutoModelForCausalLM.from_pretrained(root / "model").eval()
        build(method, student, tok).save_pretrained(str(root / method), save_embedding_layers=False)
    return root


def base(saved, dtype=torch.float32):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(saved / "model", dtype=dtype)
    untie_output_head(model)
    return model.eval()


def with_adapter(saved, method: str, dtype=torch.float32):
    from peft import PeftModel

    return PeftModel.from_pretrained(base(saved, dtype), str(saved / method)).eval()


def loglik(model) -> torch.Tensor:
    """Each next token's log-likelihood, in fp64 from the model's own logits."""
    with torch.no_grad():
        logp = model(input_ids=IDS).logits.double().log_softmax(-1)
    return logp[:, :-1].gather(-1, IDS[:, 1:, None])[..., 0]


def test_every_method_has_a_tiny_adapter(saved):
    assert sorted(p.name for p in saved.iterdir() if p.name != "model") == sorted(BUILTIN)


@pytest.mark.parametrize("method", BUILTIN)
def test_bf16_keeps_each_methods_adapter_unmerged_in_fp32_where_a_merge_rounds_it(saved, method):
    """merge_adapters in bf16 evaluates the adapter unmerged, its factors in fp32: the same log-likelihoods as
    the unmerged model's. The old behaviour, the adapter merged into the bf16 weights, fails that check: the
    merge rounds some of the delta entries away (all but a few of LaTen's) and changes the log-likelihoods."""
    adapters = {method: saved / method}
    asked = load_lm(saved / "model", adapters, batch_size=2, merge=True, dtype="bfloat16")
    plain = load_lm(saved / "model", adapters, batch_size=2, merge=False, dtype="bfloat16")
    for lm in (asked, plain):
        use_adapter(lm, method)
    assert not hasattr(asked, "pkt_merge") and hasattr(asked.model, "peft_config")  # not merged
    assert asked.model.get_base_model().dtype == torch.bfloat16
    factors = [p for name, p in asked.model.named_parameters() if "lora_" in name]
    assert factors and all(p.dtype == torch.float32 for p in factors)
    new = loglik(asked.model)
    assert torch.equal(new, loglik(plain.model))

    old = with_adapter(saved, method, torch.bfloat16).merge_and_unload().eval()  # the old merge in bf16
    assert not merges_exactly(old) and not torch.equal(loglik(old), new)
    lost, changed = rounded_away(with_adapter(saved, method), torch.bfloat16)
    assert 0 < lost < changed
    if method == "laten":
        assert lost / changed > 0.95


@pytest.mark.parametrize("method", BUILTIN)
def test_fp32_still_merges_each_methods_adapter_exactly(saved, method):
    """In fp32 the merge is kept (twice as fast to generate from on CPU) and is the peft model's function."""
    lm = load_lm(saved / "model", {method: saved / method}, batch_size=2, merge=True, dtype="float32")
    use_adapter(lm, method)
    assert lm.pkt_merge and not hasattr(lm.model, "peft_config") and merges_exactly(lm.model)
    torch.testing.assert_close(loglik(lm.model), loglik(with_adapter(saved, method)), atol=1e-5, rtol=0)
    lost, changed = rounded_away(with_adapter(saved, method), torch.float32)
    assert lost / changed < 1e-3  # fp32 drops only deltas 2^-24 of their weight: one entry here, of Seeking's


def test_a_laten_sized_delta_vanishes_in_bf16_weights(saved):
    """LaTen's deltas (1e-6 against weights of 0.02) are below half a bf16 unit in the last place of nearly
    every weight they touch: merged in bf16, those weights are the base's bit for bit; in fp32 the merged model
    is the adapter's."""
    fp32 = with_adapter(saved, "laten")
    merged16 = with_adapter(saved, "laten", torch.bfloat16).merge_and_unload()
    base16, base32 = base(saved, torch.bfloat16), base(saved)
    deltas = {name.removeprefix("base_model.model.").replace(".base_layer", ""): (w - w0).abs() for (name, w), w0 in
              zip(fp32.merge_and_unload().named_parameters(), base32.parameters())}
    touched = same = 0
    for (name, w), w0 in zip(merged16.named_parameters(), base16.parameters()):
        nonzero = deltas[name] > 0
        touched += int(nonzero.sum())
        same += int((w == w0)[nonzero].sum())
    assert touched > 0 and same / touched > 0.95
    effect32 = (loglik(fp32) - loglik(base32)).abs().max()
    assert effect32 > 0 and torch.equal(loglik(fp32.merge_and_unload()), loglik(fp32))  # fp32 keeps it


def test_vllm_merges_in_fp32_and_counts_what_the_served_dtype_rounds_away(saved, tmp_path, monkeypatch, caplog):
    """vLLM needs merged weights: the merge is done in fp32 and stored in the served dtype; in bf16 the
    adapter's lost delta entries are counted and warned about, in fp32 none are lost."""
    from safetensors.torch import load_file

    from pkt.evaluation import vllm_backend

    monkeypatch.setattr(vllm_backend, "require_vllm", lambda: None)
    adapters = {"laten": saved / "laten", "lora": saved / "lora"}
    for setting, dtype in (("run", torch.bfloat16), ("float32", torch.float32)):
        served = vllm_backend.VLLMModels(saved / "model", adapters, 2, None, tmp_path / setting, dtype=setting)
        with caplog.at_level(logging.WARNING, logger=vllm_backend.__name__):
            caplog.clear()
            out = served._merged("laten")
        weights = load_file(out / "model.safetensors")
        assert {w.dtype for w in weights.values()} == {dtype}
        expected = with_adapter(saved, "laten").merge_and_unload().state_dict()
        for name, w in weights.items():
            torch.testing.assert_close(w, expected[name].to(dtype), atol=0, rtol=0)
        lost, changed = served.rounding["laten"]["lost"], served.rounding["laten"]["changed"]
        if dtype == torch.bfloat16:
            assert lost / changed > 0.95 and f"{lost} of its {changed} delta entries" in caplog.text
        else:
            assert lost / changed < 1e-3 and not caplog.records  # fp32 drops only deltas 2^-24 of their weight


def test_vllm_auto_serves_the_checkpoints_own_dtype(saved, tmp_path):
    import json
    import shutil

    from pkt.evaluation.vllm_backend import serve_dtype

    assert serve_dtype(saved / "model", "run") == "bfloat16" and serve_dtype(saved / "model", "float16") == "float16"
    assert serve_dtype(saved / "model", "auto") == "float32"  # the toy student's own: not vLLM's fp16 for fp32
    half = tmp_path / "half"
    shutil.copytree(saved / "model", half)
    config = json.loads((half / "config.json").read_text())
    (half / "config.json").write_text(json.dumps({**config, "dtype": None, "torch_dtype": "float16"}))
    assert serve_dtype(half, "auto") == "float16"
