"""Functions the task YAMLs name with ``!function utils.<name>``; the logic is in ``pkt.evaluation``."""

from pkt.evaluation.open_instruct import gsm8k_answer, gsm8k_predictions  # noqa: F401 - for lm-eval's YAML loader
from pkt.evaluation.tasks import (  # noqa: F401 - re-exported for lm-eval's YAML loader
    extract_numbers,
    humaneval_filter,
    mbpp_filter,
    mbpp_target,
    mbpp_test_split,
    number_match,
    paper_humaneval_filter,
    pass_at_1,
    toy_gsm8k_target,
    toy_prompt,
    tulu_prompt,
)

# The papers' prompts in the Tulu format (pkt.evaluation.tasks.PAPER_TURNS); evaluation.protocol: chat_template
# swaps them.
mmlu_prompt = tulu_prompt("paper_mmlu")
gsm8k_prompt = tulu_prompt("paper_gsm8k")
humaneval_prompt = tulu_prompt("paper_humaneval")
mbpp_prompt = tulu_prompt("paper_mbpp")
