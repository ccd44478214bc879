"""Known answers for ``pkt.layers.pairing`` (SemAlign Section 4.1, Seeking's top-L map) and its figure."""

from __future__ import annotations

import json
import math

import pytest

from pkt.layers.pairing import (
    critical_student_layer,
    critical_teacher_layer,
    depth_map,
    interpolation,
    pair_layers,
    seeking_top_layers,
)
from pkt.layers.pairing_plot import plot_pairing


def test_depth_map_40_to_32_is_floor_1_25_k():
    lmap = depth_map(40, 32)
    assert len(lmap) == 32
    assert lmap == [(5 * k) // 4 for k in range(1, 33)]
    assert (lmap[0], lmap[3], lmap[4], lmap[5], lmap[6], lmap[7], lmap[31]) == (1, 5, 6, 7, 8, 10, 40)


@pytest.mark.parametrize("n", [1, 2, 7, 32])
def test_depth_map_equal_depth_is_identity(n):
    assert depth_map(n, n) == list(range(1, n + 1))


def test_depth_map_small_cases():
    assert depth_map(4, 2) == [2, 4]
    assert depth_map(60, 32)[-1] == 60
    assert depth_map(2, 4) == [1, 1, 1, 2]  # low-level map allows L_S > L_T; max(1, .) keeps layer >= 1


def test_depth_map_rejects_bad_depths():
    with pytest.raises(ValueError, match="n_student"):
        depth_map(4, 0)
    with pytest.raises(ValueError, match="n_teacher"):
        depth_map(2.0, 2)


def test_interpolation_integral_ratio():
    # 4 -> 2: u = 2k; lambda = 0 with a = u, except the top where a is clipped to L_T-1 and lambda = 1.
    assert interpolation(4, 2, 1) == (2, 3, 0.0)
    assert interpolation(4, 2, 2) == (3, 4, 1.0)
    assert interpolation(8, 8, 3) == (3, 4, 0.0)


def test_interpolation_non_integral_ratio():
    assert interpolation(40, 32, 3) == (3, 4, 0.75)
    assert interpolation(40, 32, 1) == (1, 2, 0.25)
    assert interpolation(40, 32, 32) == (39, 40, 1.0)  # u = L_T = 40 clipped
    a, b, lam = interpolation(40, 32, 5)
    assert (a, b, lam) == (6, 7, 0.25)
    with pytest.raises(ValueError, match="k must be"):
        interpolation(40, 32, 33)
    with pytest.raises(ValueError, match="at least 2"):
        interpolation(1, 1, 1)


@pytest.mark.parametrize(("l_star", "k_dagger"), [(1, 1), (5, 4), (6, 5), (7, 6), (9, 8), (10, 8), (40, 32)])
def test_critical_student_layer_40_to_32(l_star, k_dagger):
    assert critical_student_layer(l_star, 40, 32) == k_dagger
    assert depth_map(40, 32)[k_dagger - 1] >= l_star


def test_critical_student_layer_rejects_out_of_range():
    with pytest.raises(ValueError, match="1-indexed"):
        critical_student_layer(0, 40, 32)
    with pytest.raises(ValueError, match="1-indexed"):
        critical_student_layer(41, 40, 32)


def test_critical_teacher_layer_ties_and_abs():
    assert critical_teacher_layer([0.1, 0.9, 0.3, 0.9]) == 2
    assert critical_teacher_layer([0.1, -2.0, 0.3], "teacher_max") == 3
    assert critical_teacher_layer([0.1, -2.0, 0.3], "teacher_max_abs") == 2
    with pytest.raises(ValueError, match="critical rule"):
        critical_teacher_layer([1.0], "student_max")


def test_seeking_top_layers_known_answer():
    scores = [0.5, 0.1, 0.9, 0.2, 0.8, 0.3]
    assert seeking_top_layers(scores, 3) == [1, 3, 5]
    assert seeking_top_layers(scores, 6) == [1, 2, 3, 4, 5, 6]
    assert seeking_top_layers([1.0, 1.0, 1.0, 0.0], 2) == [1, 2]  # ties -> lower index
    with pytest.raises(ValueError, match="L_S <= L_T"):
        seeking_top_layers([1.0, 2.0], 3)


@pytest.mark.parametrize("bad", [[], [1.0, math.nan], [math.inf, 1.0]])
def test_scores_validated(bad):
    with pytest.raises(ValueError, match="teacher scores"):
        pair_layers(bad, [1.0])


def test_a_teacher_shallower_than_its_student_is_paired_by_the_same_rules():
    """SmolLM2's 24-layer teacher and 32-layer student, at 3 -> 4: l_T(k) = max(1, floor(3k/4)) = 1, 1, 2, 3."""
    out = pair_layers([0.1, 0.9, 0.2], [0.4, 0.3, 0.2, 0.1])
    assert [row["teacher"] for row in out["depth_map"]] == [1, 1, 2, 3]
    assert out["l_star"]["layer"] == 2 and out["pair"] == {"teacher": 2, "student": 3}  # k† = min{k: l_T(k) >= 2}
    assert out["interpolation"] == {"k": 3, "u": 2.25, "u_exact": "9/4", "a": 2, "b": 3, "lambda": 0.25}
    assert out["seeking"]["teacher_layers"] is None and out["seeking"]["map"] == []
    assert "undefined: the student is deeper" in out["seeking"]["rule"]


TEACHER_5 = [0.1, 0.2, 0.9, 0.3, 0.4]
STUDENT_4 = [0.5, 0.1, 0.2, 0.3]


def test_pair_layers_small_case():
    out = pair_layers(TEACHER_5, STUDENT_4)
    assert out["n_teacher"] == 5 and out["n_student"] == 4
    assert out["ratio"] == {"value": 1.25, "exact": "5/4", "integral": False}
    assert [p["teacher"] for p in out["depth_map"]] == [1, 2, 3, 5]
    assert out["skipped_teacher_layers"] == [4]
    assert out["l_star"]["layer"] == 3 and out["l_star"]["score"] == 0.9 and out["l_star"]["in_depth_map"]
    assert out["k_dagger"]["layer"] == 3
    assert out["pair"] == {"teacher": 3, "student": 3}
    assert out["interpolation"] == {"k": 3, "u": 3.75, "u_exact": "15/4", "a": 3, "b": 4, "lambda": 0.75}
    assert out["seeking"]["teacher_layers"] == [2, 3, 4, 5]
    assert out["seeking"]["map"][0] == {"student": 1, "teacher": 2}
    assert out["student_max_layer"] == 1
    assert out["scores"] == {"teacher": TEACHER_5, "student": STUDENT_4}


def test_pair_layers_skipped_critical_layer():
    out = pair_layers([0.1, 0.2, 0.3, 0.95, 0.4], STUDENT_4, critical="teacher_max")
    assert out["l_star"]["layer"] == 4 and not out["l_star"]["in_depth_map"]
    assert out["pair"] == {"teacher": 5, "student": 4}
    assert "skipped" in out["k_dagger"]["why"]


def test_pair_layers_interpolation_null_when_disabled_or_integral():
    assert pair_layers(TEACHER_5, STUDENT_4, interpolate=False)["interpolation"] is None
    out = pair_layers([0.1, 0.2, 0.9, 0.3], [0.5, 0.1])
    assert out["interpolation"] is None and "integral" in out["interpolation_reason"]
    assert out["pair"] == {"teacher": 4, "student": 2}


def test_pair_layers_json_round_trip():
    out = pair_layers(TEACHER_5, STUDENT_4)
    assert json.loads(json.dumps(out, allow_nan=False)) == out


def test_plot_pairing_writes_png(tmp_path):
    out = pair_layers(TEACHER_5, STUDENT_4)
    path = plot_pairing(TEACHER_5, STUDENT_4, out, "5 -> 4 layers", tmp_path / "fig" / "pairing.png")
    assert path.exists() and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["pairing.png"]  # no temp file left behind


def test_files_say_their_layers_are_one_indexed_and_convert_in_one_place():
    from pkt.layers.pairing import to_module_index

    out = pair_layers([1.0, 5.0, 2.0, 0.5], [1.0, 2.0])
    assert out["layer_index_base"] == 1 and out["pair"] == {"teacher": 2, "student": 1}
    assert to_module_index(out["pair"]["student"], out["n_student"]) == [0]  # peft layers_to_transform
    assert to_module_index([1, 4], 4) == [0, 3]
    for bad in (0, 5):
        with pytest.raises(ValueError, match=f"\\[{bad}\\] are not in 1..4"):
            to_module_index([bad], 4)


def _drawn(teacher, student):
    """The pairing figure's axes, drawn (not saved), with the pairing it shows."""
    import matplotlib.pyplot as plt

    from pkt.layers.pairing_plot import draw_pairing

    out = pair_layers(teacher, student)
    fig, ax = plt.subplots()
    draw_pairing(ax, teacher, student, out)
    return fig, ax, out


def test_the_pairing_figure_defines_each_symbol_and_explains_a_moved_l_star():
    """l_T, k† and l* each get a definition in the one legend; where l* (layer 1, highest score) is not a depth-map
    partner, an arrow leads from it to l_T(k†) = 2, where the critical line starts, and says why."""
    import matplotlib.pyplot as plt

    fig, ax, out = _drawn([2.0, 1.9, 1.4, 0.5], [6.2, 1.3])  # the toy run's gsm8k scores: l* = 1, pair (2, 1)
    try:
        assert out["l_star"]["layer"] == 1 and out["pair"] == {"teacher": 2, "student": 1}
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert any(t.startswith("depth map") and "l_T(k)" in t for t in legend)
        assert any(t.startswith("l* = 1:") and "highest importance" in t for t in legend)
        assert any(t.startswith("k\u2020 = 1:") and "l_T(k) \u2265 l*" in t for t in legend)
        assert any("(l_T(k\u2020), k\u2020) = (2, 1)" in t for t in legend)
        arrows = [c for c in ax.texts if getattr(c, "arrow_patch", None) is not None]
        assert len(arrows) == 1 and any("has no" in t.get_text() and "= 2" in t.get_text() for t in ax.texts)
    finally:
        plt.close(fig)


def test_the_pairing_figure_draws_no_arrow_when_l_star_is_a_partner():
    import matplotlib.pyplot as plt

    fig, ax, out = _drawn([0.1, 0.2, 0.3, 0.9], [0.5, 0.1])  # l* = 4 = l_T(2)
    try:
        assert out["l_star"]["in_depth_map"] and out["pair"]["teacher"] == 4
        assert not [c for c in ax.texts if getattr(c, "arrow_patch", None) is not None]
    finally:
        plt.close(fig)
