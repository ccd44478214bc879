"""One model load per evaluate job: switching task adapters gives exactly each adapter's own model."""

from __future__ import annotations

import pytest
import torch

from pkt.data.tokenizer import train_tokenizer
from pkt.data.toyworld import generate
from pkt.evaluation.evaluate import load_lm, use_adapter
from pkt.methods import LoraSettings
from pkt.models.build import llama_config


@pytest.fixture(scope="module", params=["llama", "llama-tied", "qwen2-tied"])
def saved(request, tmp_path_factory):
    """A tiny student and two LoRA adapters (every module, the embedding and LM head too) whose B matrices are
    random (so each changes the logits); untied Llama, and the tied Llama and Qwen2 of SmolLM2 and Qwen2.5."""
    from conftest import small_world
    from peft import get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    root = tmp_path_factory.mktemp("lm")
    tok = train_tokenizer(generate(small_world()).corpora["teacher"], vocab_size=400)
    arch = {"hidden_size": 32, "intermediate_size": 64, "num_layers": 2, "num_heads": 2, "max_position_embeddings": 64}
    config = llama_config(arch, tok)
    if request.param == "qwen2-tied":
        config = AutoConfig.for_model("qwen2", **{k: v for k, v in config.to_dict().items() if k in (
            "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "max_position_embeddings", "bos_token_id", "eos_token_id", "pad_token_id")})
    config.tie_word_embeddings = request.param.endswith("tied")
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    for i, task in enumerate(("task_a", "task_b")):
        torch.manual_seed(10 + i)
        peft = get_peft_model(AutoModelForCausalLM.from_pretrained(root / "model"), LoraSettings(r=4).peft_config())
        for name, param in peft.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(param, std=0.5)
        peft.save_pretrained(root / task)
    return root


def logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_switched_adapters_equal_separately_loaded_adapters(saved):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    ids = torch.tensor([[5, 6, 7, 8, 9]])
    lm = load_lm(saved / "model", {"task_a": saved / "task_a", "task_b": saved / "task_b"}, batch_size=2)
    plain = logits(AutoModelForCausalLM.from_pretrained(saved / "model").eval(), ids)
    seen = {}
    for task in ("task_a", "task_b", "task_a"):
        use_adapter(lm, task)
        alone = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(saved / "model"), saved / task).eval()
        seen[task] = logits(lm.model, ids)
        torch.testing.assert_close(seen[task], logits(alone, ids))
    assert not torch.allclose(seen["task_a"], seen["task_b"]) and not torch.allclose(seen["task_a"], plain)
    with pytest.raises(KeyError, match="task_c"):
        use_adapter(lm, "task_c")


def test_merged_adapters_give_each_adapters_logits_and_leave_the_base_untouched(saved):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    ids = torch.tensor([[5, 6, 7, 8, 9]])
    lm = load_lm(saved / "model", {"task_a": saved / "task_a", "task_b": saved / "task_b"}, batch_size=2, merge=True)
    plain = logits(AutoModelForCausalLM.from_pretrained(saved / "model").eval(), ids)
    for task in ("task_a", "task_b", "task_a"):
        use_adapter(lm, task)
        assert not hasattr(lm.model, "peft_config")  # plain weights: no LoRA branch left
        alone = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(saved / "model"), saved / task).eval()
        torch.testing.assert_close(logits(lm.model, ids), logits(alone, ids), atol=5e-5, rtol=1e-4)  # fp32 rounding
    torch.testing.assert_close(logits(lm.pkt_merge["base"], ids), plain)  # every merge starts from a fresh copy
    with pytest.raises(KeyError, match="task_c"):
        use_adapter(lm, "task_c")


def test_without_adapters_the_model_is_the_plain_model(saved):
    from transformers import AutoModelForCausalLM

    ids = torch.tensor([[5, 6, 7]])
    lm = load_lm(saved / "model", batch_size=2, max_length=64)
    plain = AutoModelForCausalLM.from_pretrained(saved / "model").eval()
    torch.testing.assert_close(logits(lm.model, ids), logits(plain, ids))
    assert lm.max_length == 64
