"""Tiny Python programming problems for the toy HumanEval and MBPP tasks.

A problem is a one-line function drawn from a family (``add k``, ``larger of two``, ``repeat a
string``...). The reference body is a Python expression; the expected values in the tests are
computed by evaluating that expression, so every reference solution passes its own tests by
construction (and a test checks it does). Families, constants, function names and argument names
vary independently, which gives about 1,650 distinct function names and 5,700 signatures: enough for
disjoint pretraining, fine-tuning and test pools of several hundred problems each.

A problem's ``template`` is its family with its argument names (``add(x)``, 59 in all): the docstring
with the constant left open. Problems of one template share everything but the constant, the function
name and the test inputs, and a model tends to write the same (right or wrong) body for all of them,
so their scores are correlated: the tables resample test items by template (``cluster`` of a record).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

WORDS = ("cat", "sun", "tree", "blue", "rock", "moon", "fish", "star", "wind", "leaf")


@dataclass(frozen=True)
class Family:
    """One kind of problem: docstring and body templates over arguments ``{a}``, ``{b}`` and ``{k}``."""

    key: str
    kind: str  # "int", "int2", "list" or "str": the argument types
    doc: str
    expr: str
    names: tuple[str, ...]
    k_range: tuple[int, int] = (1, 60)


SMALL = (2, 9)  # divisors, factors and repeats stay small; additive constants range over 1-60

FAMILIES: tuple[Family, ...] = (
    Family("add", "int", "Return {a} plus {k}.", "{a} + {k}", ("add_{k}", "plus_{k}", "increase_by_{k}")),
    Family("sub", "int", "Return {a} minus {k}.", "{a} - {k}", ("subtract_{k}", "minus_{k}", "decrease_by_{k}")),
    Family("mul", "int", "Return {a} times {k}.", "{a} * {k}", ("times_{k}", "multiply_by_{k}", "scale_by_{k}"),
           SMALL),
    Family("mod", "int", "Return the remainder of {a} divided by {k}.", "{a} % {k}", ("mod_{k}", "remainder_{k}"),
           SMALL),
    Family("multiple", "int", "Return True if {a} is a multiple of {k}.", "{a} % {k} == 0",
           ("is_multiple_of_{k}", "divisible_by_{k}"), SMALL),
    Family("greater", "int", "Return True if {a} is greater than {k}.", "{a} > {k}",
           ("greater_than_{k}", "is_above_{k}")),
    Family("square_plus", "int", "Return the square of {a} plus {k}.", "{a} * {a} + {k}",
           ("square_plus_{k}", "squared_add_{k}")),
    Family("double_plus", "int", "Return twice {a} plus {k}.", "2 * {a} + {k}", ("double_plus_{k}", "twice_plus_{k}")),
    Family("sum2", "int2", "Return the sum of {a} and {b} plus {k}.", "{a} + {b} + {k}",
           ("sum_plus_{k}", "add_two_plus_{k}")),
    Family("max2", "int2", "Return the larger of {a} and {b} plus {k}.", "max({a}, {b}) + {k}",
           ("larger_plus_{k}", "max_plus_{k}")),
    Family("min2", "int2", "Return the smaller of {a} and {b} plus {k}.", "min({a}, {b}) + {k}",
           ("smaller_plus_{k}", "min_plus_{k}")),
    Family("gap", "int2", "Return the absolute difference of {a} and {b} plus {k}.", "abs({a} - {b}) + {k}",
           ("gap_plus_{k}", "distance_plus_{k}")),
    Family("list_sum", "list", "Return the sum of the items of {a} plus {k}.", "sum({a}) + {k}",
           ("total_plus_{k}", "list_sum_plus_{k}")),
    Family("list_count", "list", "Return how many items of {a} are greater than {k}.",
           "len([v for v in {a} if v > {k}])", ("count_above_{k}", "num_greater_{k}"), SMALL),
    Family("list_first", "list", "Return the first item of {a} plus {k}.", "{a}[0] + {k}",
           ("first_plus_{k}", "head_plus_{k}")),
    Family("list_last", "list", "Return the last item of {a} plus {k}.", "{a}[-1] + {k}",
           ("last_plus_{k}", "tail_plus_{k}")),
    Family("repeat", "str", "Return {a} repeated {k} times.", "{a} * {k}", ("repeat_{k}", "copies_{k}"), SMALL),
)

ARG_NAMES = {
    "int": (("x",), ("n",), ("value",), ("num",)),
    "int2": (("a", "b"), ("x", "y"), ("m", "n")),
    "list": (("xs",), ("items",), ("nums",)),
    "str": (("s",), ("text",), ("word",)),
}


@dataclass(frozen=True)
class CodeProblem:
    """One problem, with everything both code tasks need."""

    name: str
    args: tuple[str, ...]
    doc: str
    body: str  # the reference expression, with the argument names filled in
    inputs: tuple[tuple[object, ...], ...]
    outputs: tuple[object, ...]
    template: str = ""  # family and argument names, e.g. "add(x)": the cluster of correlated test items

    @property
    def signature(self) -> str:
        return f"def {self.name}({', '.join(self.args)}):"

    @property
    def humaneval_prompt(self) -> str:
        """Signature plus docstring, to be completed with a body (HumanEval convention)."""
        return f'{self.signature}\n    """{self.doc}"""\n'

    @property
    def humaneval_completion(self) -> str:
        return f"    return {self.body}\n"

    @property
    def humaneval_test(self) -> str:
        """A ``check(candidate)`` function with one assert per example (HumanEval convention)."""
        lines = ["def check(candidate):"]
        lines += [f"    assert candidate({_call_args(i)}) == {o!r}" for i, o in zip(self.inputs, self.outputs)]
        return "\n".join(lines) + "\n"

    @property
    def mbpp_text(self) -> str:
        doc = self.doc[0].lower() + self.doc[1:]
        return f"Write a function {self.name}({', '.join(self.args)}) that returns {_strip_return(doc)}"

    @property
    def mbpp_code(self) -> str:
        return f"{self.signature}\n    return {self.body}\n"

    @property
    def mbpp_tests(self) -> list[str]:
        return [f"assert {self.name}({_call_args(i)}) == {o!r}" for i, o in zip(self.inputs, self.outputs)]


def _call_args(values: tuple[object, ...]) -> str:
    return ", ".join(repr(v) for v in values)


def _strip_return(doc: str) -> str:
    return doc[len("return ") :] if doc.startswith("return ") else doc


def _sample_input(kind: str, rng: random.Random) -> tuple[object, ...]:
    if kind == "int":
        return (rng.randint(0, 20),)
    if kind == "int2":
        return (rng.randint(0, 20), rng.randint(0, 20))
    if kind == "list":
        return ([rng.randint(0, 9) for _ in range(rng.randint(1, 4))],)
    return (rng.choice(WORDS),)


def sample_problem(rng: random.Random, n_tests: int = 3) -> CodeProblem:
    """Draw one problem; the expected outputs come from evaluating the reference body."""
    family = rng.choice(FAMILIES)
    k = rng.randint(*family.k_range)
    args = rng.choice(ARG_NAMES[family.kind])
    names = {"a": args[0], "b": args[-1], "k": k}
    body = family.expr.format(**names)
    doc = family.doc.format(**{key: f"`{v}`" if key != "k" else v for key, v in names.items()})
    inputs: list[tuple[object, ...]] = []
    while len(inputs) < n_tests:
        candidate = _sample_input(family.kind, rng)
        if candidate not in inputs:
            inputs.append(candidate)
    fn = eval(f"lambda {', '.join(args)}: {body}")  # noqa: S307 - our own template, not user input
    outputs = tuple(fn(*i) for i in inputs)
    name = rng.choice(family.names).format(k=k)
    template = f"{family.key}({', '.join(args)})"
    return CodeProblem(name, args, doc, body, tuple(inputs), outputs, template)
