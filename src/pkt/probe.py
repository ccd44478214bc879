"""Knowledge probe: does a model know the held-out facts of the toy world?

Each ``toy_mmlu`` item is scored cloze style: the summed log-probability of each option's text
after the chat prompt, argmax wins. Letter scoring (A-D) stays at chance for models this small even
on facts they know, so the option text is what is scored (``research/toyworld.md``). Accuracy is
reported separately on held-out facts (the student never saw them) and control facts (it did).
"""

from __future__ import annotations

from typing import Any

from pkt.data.records import render_prompt


def option_logliks(model, tokenizer, prompts: list[str], options: list[list[str]], batch_size: int = 64,
                   device: str = "cpu") -> list[list[float]]:
    """Summed log p(option tokens | prompt) for every option of every prompt."""
    import torch

    pairs = [(p, o) for p, opts in zip(prompts, options) for o in opts]
    scores: list[float] = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        ctx = tokenizer([p for p, _ in chunk], add_special_tokens=False)["input_ids"]
        cont = tokenizer([o for _, o in chunk], add_special_tokens=False)["input_ids"]
        seqs = [c + o for c, o in zip(ctx, cont)]
        width = max(map(len, seqs))
        ids = torch.full((len(seqs), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1
        with torch.no_grad():
            logp = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float().log_softmax(-1)
        for i, (c, o) in enumerate(zip(ctx, cont)):
            positions = torch.arange(len(c) - 1, len(c) + len(o) - 1)
            scores.append(logp[i, positions, torch.tensor(o)].sum().item())
    out, k = [], 0
    for opts in options:
        out.append(scores[k : k + len(opts)])
        k += len(opts)
    return out


def probe(model, tokenizer, items: list[dict[str, Any]], batch_size: int = 64, device: str = "cpu") -> dict:
    """Accuracy on held-out and control facts, with per-item predictions."""
    prompts = [render_prompt(it["question"]) for it in items]
    scores = option_logliks(model, tokenizer, prompts, [it["choices"] for it in items], batch_size, device)
    rows = []
    for it, s in zip(items, scores):
        pred = max(range(len(s)), key=s.__getitem__)
        rows.append({"id": it["id"], "known_by_student": it["known_by_student"], "pred": pred,
                     "answer": it["answer"], "correct": pred == it["answer"]})

    def acc(known: bool) -> tuple[int, float | None]:
        sel = [r["correct"] for r in rows if r["known_by_student"] == known]
        return len(sel), (sum(sel) / len(sel) if sel else None)

    n_held, acc_held = acc(False)
    n_ctrl, acc_ctrl = acc(True)
    chance = sum(1 / len(it["choices"]) for it in items) / max(len(items), 1)
    return {"n_held_out": n_held, "acc_held_out": acc_held, "n_control": n_ctrl, "acc_control": acc_ctrl,
            "chance": chance, "items": rows}
