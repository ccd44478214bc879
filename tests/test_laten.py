"""LaTen (pkt.methods.laten.translate, .locate): attribution, translator, injection and its adapter, known answers."""

from __future__ import annotations

import copy

import pytest
import torch

from pkt.methods.laten.locate import attribute, attribution_input, normaliser, top_layers, top_units
from pkt.methods.laten.translate import (
    KINDS,
    LatenSettings,
    Plan,
    Translator,
    delta_adapter,
    fold,
    injected,
    locate,
    plan,
    teacher_vectors,
    train_translator,
    unit_counts,
    weight_deltas,
)

VOCAB = 40


def tiny(d: int, layers: int, inter: int, seed: int, kv_heads: int = 2):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=d, intermediate_size=inter, num_hidden_layers=layers,
                      num_attention_heads=2, num_key_value_heads=kv_heads, max_position_embeddings=64,
                      tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=None)
    return LlamaForCausalLM(cfg).eval()


class CharTokenizer:
    """Llama-style: a BOS before the text when special tokens are added, no pad token, one id per character."""

    bos_token_id, eos_token_id, pad_token, unk_token = 1, 2, None, None
    eos_token = "</s>"

    @property
    def pad_token_id(self) -> int | None:
        return None if self.pad_token is None else self.eos_token_id  # ensure_pad_token picks the EOS

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        ids = [3 + (ord(c) % (VOCAB - 3)) for c in text]
        return {"input_ids": ([self.bos_token_id] if add_special_tokens else []) + ids}


def record(user: str, answer: str) -> dict:
    return {"id": user, "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]}


def test_attribution_input_drops_trailing_punctuation_and_keeps_the_bos():
    tok = CharTokenizer()
    ids, target = attribution_input(record("2+2?", "four.\n"), tok, max_length=64)
    full = tok("<|user|>\n2+2?\n<|assistant|>\n")["input_ids"] + tok("four", add_special_tokens=False)["input_ids"]
    assert ids[0].tolist() == full[:-1] and target == full[-1] and ids[0, 0] == tok.bos_token_id
    short, target_short = attribution_input(record("2+2?", "four.\n"), tok, max_length=5)
    assert short[0].tolist() == full[:-1][-5:] and target_short == target  # long inputs keep their end
    with pytest.raises(ValueError, match="no token left"):
        attribution_input(record("q", ". )"), tok, 64)


def planted(neuron: int = 5, layer: int = 1, target: int = 7):
    """A model in which FFN neuron ``neuron`` of ``layer`` writes ``target``'s unembedding at the last position."""
    model = tiny(16, 2, 32, seed=0)
    ids = torch.tensor([[1, 4, 9, 12, 20, 3]])
    seen = {}
    block = model.model.layers[layer]
    handle = block.post_attention_layernorm.register_forward_hook(lambda _m, _a, out: seen.__setitem__("h", out))
    with torch.no_grad():
        model(input_ids=ids)
    handle.remove()
    x = seen["h"][0, -1]
    with torch.no_grad():
        direction = x / x.norm()
        block.mlp.gate_proj.weight[neuron] = 3.0 * direction  # c = z^2 sigmoid(z) with z = 3 |x| > 0: large
        block.mlp.up_proj.weight[neuron] = 3.0 * direction
        block.mlp.down_proj.weight[:, neuron] = model.lm_head.weight[target] / model.model.norm.weight
    return model, ids, target


def test_attribution_ranks_the_neuron_that_writes_the_answer_first():
    model, ids, target = planted(neuron=5, layer=1, target=7)
    scores = attribute(model, ids, target)
    assert scores.ffn_neurons.shape == (2, 32) and scores.attn_dims.shape == (2, 16)
    assert int(scores.ffn_neurons[1].argmax()) == 5
    assert int(scores.ffn_layers.argmax()) == 1  # the layer holding it gains the most
    other = attribute(model, ids, (target + 1) % VOCAB)  # another answer token: the neuron no longer leads
    assert int(other.ffn_neurons[1].argmax()) != 5 or other.ffn_neurons[1, 5] < scores.ffn_neurons[1, 5]


def test_the_normaliser_is_the_square_root_of_the_centred_std_as_the_reference_computes_it():
    """knowledge_neurons.py:111 + utils.py:14: h * rsqrt(sqrt(var(h, unbiased=False) + 1e-5) + 1e-6)."""
    h = torch.tensor([1.0, 2.0, 3.0, 4.0])  # mean 2.5, centred variance (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25
    # std = sqrt(1.25 + 1e-5) = 1.11803846..., sigma = sqrt(std + 1e-6) = 1.05737385...; the RMS would be sqrt(7.5)
    assert float(normaliser(h)) == pytest.approx(1.0573738510, rel=1e-6)
    assert float(normaliser(h + 10.0)) == pytest.approx(1.0573738510, rel=1e-6)  # centred: a shift changes nothing
    assert float(normaliser(4.0 * h)) == pytest.approx((4.0 * 1.25**0.5) ** 0.5, rel=1e-5)  # sqrt of the scale


def test_layer_scores_telescope_to_the_models_log_prob_gain_over_the_embedding():
    """x_in of layer l+1 = x_in + attn + ffn of layer l, so the scores sum to log p(h_L) - log p(x_0) under the
    fixed normaliser sqrt(std(h_L)) (the reference's; with the RMS, log p(h_L) would be the model's own)."""
    model = tiny(16, 2, 32, seed=1)
    before = model.config._attn_implementation
    ids, target = torch.tensor([[1, 5, 6, 7]]), 9
    scores = attribute(model, ids, target)
    assert model.config._attn_implementation == before  # eager only for the attribution pass
    seen = {}
    handle = model.model.norm.register_forward_pre_hook(lambda _m, a: seen.__setitem__("h", a[0][0, -1]))
    with torch.no_grad():
        actual = torch.log_softmax(model(input_ids=ids).logits[0, -1], -1)[target]
        handle.remove()
        h = seen["h"]
        sigma = torch.sqrt(torch.sqrt(h.var(unbiased=False) + 1e-5) + 1e-6)
        x0 = model.model.embed_tokens(ids)[0, -1]
        start = torch.log_softmax(model.lm_head(model.model.norm.weight * x0 / sigma), -1)[target]
        end = torch.log_softmax(model.lm_head(model.model.norm.weight * h / sigma), -1)[target]
    total = scores.attn_layers.sum() + scores.ffn_layers.sum()
    torch.testing.assert_close(total, end - start, atol=1e-4, rtol=1e-4)
    assert abs(float(end - actual)) > 1e-3  # not the RMS: the model's own log-probability differs


def test_layers_are_taken_best_first_then_sorted_and_units_best_first():
    assert top_layers(torch.tensor([0.1, 3.0, -1.0, 2.0]), 2) == [1, 3]
    units = top_units(torch.tensor([[0.0, 5.0, 1.0], [9.0, 0.0, 2.0]]), [1, 0], 2)
    assert units.tolist() == [[0, 2], [1, 2]]
    with pytest.raises(ValueError):
        top_units(torch.zeros(2, 3), [0], 4)


@pytest.fixture(scope="module")
def pair():
    teacher, student = tiny(24, 4, 48, seed=2), tiny(16, 2, 32, seed=3)
    ids = torch.tensor([[1, 4, 9, 12, 20, 3]])
    p = plan(attribute(teacher, ids, 7), attribute(student, ids, 7), *unit_counts(student, 0.25))
    return teacher, student, p


def test_plan_pairs_the_ith_selected_teacher_layer_with_the_ith_student_layer(pair):
    teacher, student, p = pair
    assert unit_counts(student, 0.25) == (8, 4)
    for kind in KINDS:
        t_layers, s_layers = zip(*p.layers[kind])
        assert list(s_layers) == [0, 1] and list(t_layers) == sorted(t_layers) and len(set(t_layers)) == 2
        n = 8 if kind in ("up", "down") else 4
        assert p.teacher_units[kind].shape == (2, n) == p.student_units[kind].shape
    with pytest.raises(ValueError, match="selects no unit"):
        unit_counts(student, 0.01)


def test_a_translator_at_init_gives_deltas_below_1e_3(pair):
    teacher, student, p = pair
    torch.manual_seed(0)
    deltas = Translator(24, 16, init_std=1e-5)(teacher_vectors(teacher, p))
    assert {k: tuple(v.shape) for k, v in deltas.items()} == {"up": (2, 8, 16), "down": (2, 8, 16),
                                                               "v": (2, 4, 16), "o": (2, 4, 16)}
    assert float(sum(d.detach().pow(2).sum() for d in deltas.values()) ** 0.5) < 1e-3


def test_teacher_vectors_are_the_units_rows_and_columns(pair):
    teacher, _, p = pair
    vectors = teacher_vectors(teacher, p)
    (t_layer, _), units = p.layers["down"][0], p.teacher_units["down"][0]
    down = teacher.model.layers[t_layer].mlp.down_proj.weight
    assert torch.equal(vectors["down"][0], down[:, units].T)
    (t_layer, _), units = p.layers["up"][1], p.teacher_units["up"][1]
    assert torch.equal(vectors["up"][1], teacher.model.layers[t_layer].mlp.up_proj.weight[units])


def random_deltas(p: Plan, scale: float = 0.3) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(4)
    return {k: scale * torch.randn(*p.student_units[k].shape, 16, generator=gen) for k in KINDS}


def test_a_folded_delta_equals_the_hooked_forward(pair):
    _, student, p = pair
    deltas = random_deltas(p)
    ids = torch.tensor([[1, 8, 3, 15, 22, 9, 4]])
    with torch.no_grad():
        with injected(student, p, deltas):
            hooked = student(input_ids=ids).logits
        plain = student(input_ids=ids).logits  # the hooks are gone after the block
        folded_model = copy.deepcopy(student)
        fold(folded_model, weight_deltas(student, p, deltas))
        folded = folded_model(input_ids=ids).logits
    assert (hooked - plain).abs().max() > 1e-2  # the delta matters ...
    torch.testing.assert_close(folded, hooked, atol=1e-5, rtol=1e-5)  # ... and folding it changes nothing else
    dws = weight_deltas(student, p, deltas)
    (_, s_layer), units = p.layers["o"][0], p.student_units["o"][0]
    dw = dws[f"model.layers.{s_layer}.self_attn.o_proj"]
    assert torch.equal(dw[:, units], deltas["o"][0].T) and dw.abs().sum(0).nonzero().numel() == units.numel()


def test_the_saved_adapter_gives_the_folded_weights_on_the_vanilla_student(pair, tmp_path):
    from peft import PeftModel

    _, student, p = pair
    deltas = random_deltas(p)
    ids = torch.tensor([[1, 8, 3, 15, 22, 9, 4]])
    folded_model = copy.deepcopy(student)
    fold(folded_model, weight_deltas(student, p, deltas))
    delta_adapter(copy.deepcopy(student), p, deltas).save_pretrained(str(tmp_path / "adapter"))
    loaded = PeftModel.from_pretrained(copy.deepcopy(student), str(tmp_path / "adapter")).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids).logits, folded_model(input_ids=ids).logits,
                                   atol=1e-5, rtol=1e-5)


def test_grouped_query_attention_maps_attention_dims_to_their_kv_rows():
    student = tiny(16, 2, 32, seed=5, kv_heads=1)  # 2 heads share one kv head of 8 dims
    teacher = tiny(24, 4, 48, seed=6)
    ids = torch.tensor([[1, 4, 9, 12, 20, 3]])
    p = plan(attribute(teacher, ids, 7), attribute(student, ids, 7), *unit_counts(student, 0.25))
    deltas = random_deltas(p)
    with torch.no_grad():
        with injected(student, p, deltas):
            hooked = student(input_ids=ids).logits
        folded_model = copy.deepcopy(student)
        fold(folded_model, weight_deltas(student, p, deltas))
        torch.testing.assert_close(folded_model(input_ids=ids).logits, hooked, atol=1e-5, rtol=1e-5)
    assert weight_deltas(student, p, deltas)["model.layers.0.self_attn.v_proj"].shape == (8, 16)


def test_translator_training_relocates_every_step_and_moves_the_deltas_off_zero():
    teacher, student = tiny(24, 4, 48, seed=2), tiny(16, 2, 32, seed=3)
    tok = CharTokenizer()
    extract = [record(f"q{i}?", f"a{i} b") for i in range(3)]
    align = [record(f"w{i}", f"x{i}y") for i in range(5)]
    settings = LatenSettings(rate=0.25, steps=3, minibatch=4)
    before = [p.clone() for p in student.parameters()]
    translator, log = train_translator(teacher, student, tok, extract, align, settings, seed=0, max_length=32)
    assert [row["step"] for row in log] == [1, 2, 3]
    assert log[-1]["delta_norm"] > 10 * log[0]["delta_norm"] and log[0]["delta_norm"] < 1e-6  # from ~0, growing
    assert all(torch.equal(a, b) for a, b in zip(before, student.parameters()))  # the student is never trained
    again, log_again = train_translator(teacher, student, tok, extract, align, settings, seed=0, max_length=32)
    assert log_again == log  # deterministic per seed
    _, other = train_translator(teacher, student, tok, extract, align, settings, seed=1, max_length=32)
    assert other != log


def reference_lrs(lr: float, total: int, steps: int) -> list[float]:
    """The learning rate of each of the first ``steps`` steps of torch's OneCycleLR over ``total`` steps, with the
    reference's arguments (train_LaTen.py:195-202)."""
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total, pct_start=0.1,
                                                   final_div_factor=1, anneal_strategy="cos")
    out = []
    for _ in range(steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return out


def test_the_reference_schedule_spans_twenty_steps_and_warms_up_in_the_first():
    """At 20 extract rows and lr 3e-4 the steps run at 1.2e-5 (max_lr / 25), 3e-4, then a cosine decay; a cycle
    squeezed into 4 steps would run at 2.8e-4, 1.8e-4, 6.3e-5, 1.2e-5 instead."""
    lrs = reference_lrs(3e-4, 20, 4)
    assert lrs[:2] == pytest.approx([1.2e-5, 3e-4]) and lrs[2] == pytest.approx(2.98e-4, rel=1e-2)
    assert reference_lrs(3e-4, 4, 4) == pytest.approx([2.81e-4, 1.81e-4, 6.34e-5, 1.2e-5], rel=1e-2)


def test_the_translator_runs_the_first_steps_of_the_schedule_over_the_whole_extract_split():
    teacher, student = tiny(24, 4, 48, seed=2), tiny(16, 2, 32, seed=3)
    tok = CharTokenizer()
    extract = [record(f"q{i}?", f"a{i} b") for i in range(6)]
    align = [record(f"w{i}", f"x{i}y") for i in range(5)]
    stopped, log = train_translator(teacher, student, tok, extract, align,
                                    LatenSettings(rate=0.25, steps=4, minibatch=4, lr=1e-2), seed=0, max_length=32)
    assert [row["lr"] for row in log] == pytest.approx(reference_lrs(1e-2, 6, 4), rel=1e-9)
    _, full = train_translator(teacher, student, tok, extract, align,
                               LatenSettings(rate=0.25, steps=6, minibatch=4, lr=1e-2), seed=0, max_length=32)
    assert [row["lr"] for row in full] == pytest.approx(reference_lrs(1e-2, 6, 6), rel=1e-9)
    assert full[:4] == log  # the same steps, losses and deltas as the first four of the whole schedule
    # step 5 of the whole schedule translates with the translator after 4 steps: the stopped one
    p = locate(teacher, student, extract[4], tok, 32, *unit_counts(student, 0.25))
    with torch.no_grad():
        deltas = stopped(teacher_vectors(teacher, p))
    assert float(sum(d.pow(2).sum() for d in deltas.values()) ** 0.5) == pytest.approx(full[4]["delta_norm"], rel=1e-6)
    with pytest.raises(ValueError, match="laten.steps 7 exceeds the extract split's 6 rows"):
        train_translator(teacher, student, tok, extract, align, LatenSettings(rate=0.25, steps=7), seed=0,
                         max_length=32)


def test_train_on_inputs_takes_the_translators_lm_loss_over_every_token():
    """LaTen's MMLU setting (README.md:56): at step 1 (deltas ~1e-10) the LM loss is the student's own, over the
    prompt and answer tokens with it, over the answer's alone without it."""
    from pkt.data.records import encode_split

    teacher, student = tiny(24, 4, 48, seed=2), tiny(16, 2, 32, seed=3)
    tok = CharTokenizer()
    extract, align = [record("q?", "a b")], [record("w", "x")]
    losses = {}
    for on_inputs in (False, True):
        settings = LatenSettings(rate=0.25, steps=1, minibatch=1, train_on_inputs=on_inputs)
        _, log = train_translator(teacher, student, tok, extract, align, settings, seed=0, max_length=48)
        losses[on_inputs] = log[0]["lm_loss"]
    (encoded,), _ = encode_split(extract, tok, 48, trainer="laten")
    ids = torch.tensor([encoded["input_ids"]])
    answer = sum(label != -100 for label in encoded["labels"])
    assert 0 < answer < ids.shape[1]  # the prompt is masked without train_on_inputs
    with torch.no_grad():
        logp = torch.log_softmax(student(input_ids=ids).logits[0, :-1], -1).gather(1, ids[0, 1:, None])[:, 0]
    assert losses[True] == pytest.approx(float(-logp.mean()), rel=1e-5)
    assert losses[False] == pytest.approx(float(-logp[-answer:].mean()), rel=1e-5)
