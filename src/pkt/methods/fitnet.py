"""``fitnet``: SemAlign's paired-layer training with a *learned* linear map instead of the semantic bases.

The direct test of SemAlign's claim that a vocabulary-defined map beats a learned one (FitNet's hints, Romero
et al. 2015). The same LoRA on the same paired student layer(s) (``semalign.target_modules``), the same signal and
teacher positions (the ``teacher_targets`` rule's unmapped rows, ``teacher<k>.npy``, at the positions that
predict a response token); the loss is
w_layer hint(P s_S, s_T) + w_ce CE with a projector P [D_T, D_S] per paired layer (a bias-free Linear,
PyTorch's default init drawn after the training seed is set), trained jointly in fp32. Only the LoRA
factors are exported: the projector is a training device. A checkpoint holds the projectors too, so a
resumed run continues from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from pkt.layers.importance import IGNORE_INDEX, predicting_positions
from pkt.methods.base import LoraSettings, register
from pkt.methods.semalign.method import SemAlign
from pkt.methods.semalign.targets import residual_signal

LOSSES = ("cosine", "mse")


def hint_loss(projected: torch.Tensor, target: torch.Tensor, kind: str = "cosine") -> torch.Tensor:
    """Distance between projected student rows and teacher rows, both [N, D_T], averaged over rows.

    ``cosine``: 1 - mean cos (scale-free, like SemAlign's layer term); ``mse``: mean squared error per
    element (FitNet's original L2). The target is a fixed goal and is detached.
    """
    if kind not in LOSSES:
        raise ValueError(f"fitnet.loss must be one of {LOSSES}, got {kind!r}")
    if projected.ndim != 2 or projected.shape != target.shape:
        raise ValueError(f"expected projected student and teacher rows of one shape [N, D_T]; got "
                         f"{tuple(projected.shape)} and {tuple(target.shape)}")
    if projected.shape[0] == 0:
        raise ValueError("hint_loss: no supervised position (0 rows)")
    target = target.detach().to(projected.dtype)
    if kind == "cosine":
        return 1.0 - F.cosine_similarity(projected, target, dim=-1, eps=1e-8).mean()
    return F.mse_loss(projected, target)


PROJECTORS = "fitnet_projectors"  # the peft model's submodule holding them (so the Trainer optimises them)


@dataclass
class FitNetSettings(LoraSettings):
    """SemAlign's LoRA placement; the hint's distance and the weights of hint and cross-entropy."""

    target_modules: list[str] = field(default_factory=lambda: ["v_proj", "o_proj", "up_proj", "down_proj"])
    loss: str = "cosine"
    layer_weight: float = 1.0
    ce_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"fitnet.loss must be one of {LOSSES}, got {self.loss!r}")


@register
class FitNet(SemAlign):
    """Layer distillation at SemAlign's pairs through learned projectors (module docstring)."""

    name = "fitnet"
    label = "FitNet"
    needs = ("targets",)  # no alignment phase
    config_class = FitNetSettings

    @property
    def supervised_weight(self) -> float:
        return self.config.ce_weight

    def align_phase(self) -> dict[str, Any] | None:
        return None

    def init_adapter(self, model, tokenizer):
        """SemAlign's LoRA and hooks, plus one projector per paired layer as a trainable submodule."""
        model = super().init_adapter(model, tokenizer)
        d_s = model.get_input_embeddings().weight.shape[1]
        targets = self.targets()
        projectors = torch.nn.ModuleDict()
        for i in self.layers:
            d_t = targets.teacher_layer_width(i + 1)
            projectors[str(i)] = torch.nn.Linear(d_s, d_t, bias=False)  # default init, from the training seed
        device = next(p for p in model.parameters()).device
        model.add_module(PROJECTORS, projectors.to(device))
        self.projectors = projectors
        return model

    def callbacks(self) -> list[Any]:
        """Save the projectors into each checkpoint and load them back on a resume."""
        from transformers import TrainerCallback

        method = self

        class KeepProjectors(TrainerCallback):
            def on_save(self, args, state, control, **kwargs):
                folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                torch.save(method.projectors.state_dict(), folder / f"{PROJECTORS}.pt")

            def on_train_begin(self, args, state, control, **kwargs):
                if state.global_step == 0:
                    return
                saved = Path(args.output_dir) / f"checkpoint-{state.global_step}" / f"{PROJECTORS}.pt"
                if not saved.is_file():  # the optimizer's moments would continue for a fresh projector
                    raise FileNotFoundError(f"resuming fitnet at step {state.global_step}, but the checkpoint holds "
                                            f"no projectors ({saved}); delete {saved.parent} to restart")
                method.projectors.load_state_dict(torch.load(saved, weights_only=True))

        return [KeepProjectors()]

    def aux_loss(self, model, inputs: dict[str, Any], outputs: Any):
        """w_layer * mean over paired layers of hint(P s_S, s_T) at the positions predicting a response token."""
        prev = predicting_positions(inputs["labels"] != IGNORE_INDEX)  # the targets' positions
        examples, counts = self.targets().examples_of(inputs)
        terms = []
        for i in self.layers:
            signal = residual_signal(self.captured[i], self.inputs_of.get(i), self.signal)
            wanted = torch.cat(self.targets().teacher_layer(i + 1, examples, counts)).to(signal.device)
            projected = self.projectors[str(i)](signal[prev].float())
            terms.append(hint_loss(projected, wanted, self.config.loss))
        return self.config.layer_weight * torch.stack(terms).mean()
