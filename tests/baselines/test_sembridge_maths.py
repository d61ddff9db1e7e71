"""SemBridge maths (SKA alignment, DynM re-matching) against NumPy, SciPy and POT references."""

from __future__ import annotations

import numpy as np
import ot
import pytest
import torch
from scipy.special import softmax
from scipy.stats import entropy

from msrgb_bench.baselines.sembridge.alignment import (
    PlanKind,
    SemanticAlignment,
    TokenAttentionPlan,
    column_importance,
    coral_loss,
    cross_modal_weights,
    grid_side,
    pool_tokens,
    reweight_tokens,
    sinkhorn_plan,
)
from msrgb_bench.baselines.sembridge.rematch import kl_rematch, rematch_epochs
from msrgb_bench.models.base import Features

# --- NumPy references -------------------------------------------------------------------------


def coral_direct(x: np.ndarray, y: np.ndarray) -> float:
    """The released code's CORAL with explicit d x d scatter matrices."""
    d = x.shape[1]
    xc = x - x.mean(axis=0)
    yc = y - y.mean(axis=0)
    return float(np.mean((xc.T @ xc - yc.T @ yc) ** 2) / (4 * d))


def attention_np(tokens: np.ndarray, qk_weight: np.ndarray, heads: int) -> np.ndarray:
    """softmax(Q K^T / sqrt(head_dim)) per head, from a (2C x C) no-bias q/k weight."""
    b, n, c = tokens.shape
    hd = c // heads
    q = (tokens @ qk_weight[:c].T).reshape(b, n, heads, hd).transpose(0, 2, 1, 3)
    k = (tokens @ qk_weight[c:].T).reshape(b, n, heads, hd).transpose(0, 2, 1, 3)
    return softmax(q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd), axis=-1)


def reweight_np(z: np.ndarray, a: np.ndarray) -> np.ndarray:
    weighted = a[..., None] * z
    s = np.sqrt(
        (np.linalg.norm(z.mean(axis=1), axis=-1) ** 2)
        / (np.linalg.norm(weighted.mean(axis=1), axis=-1) ** 2)
    )
    return s[:, None, None] * weighted


def f64(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float64)


# --- DynM schedule ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("e0", "delta", "mu", "table", "full_200"),
    [
        (30, 30, 5, [30, 60, 95, 135], [30, 60, 95, 135, 180]),  # S2S_EU
        (45, 15, 5, [45, 60, 80, 105, 135], [45, 60, 80, 105, 135, 170]),  # S2S_CN
        (15, 30, 5, [15, 45, 80, 120, 165], [15, 45, 80, 120, 165]),  # M2S_GL
    ],
)
def test_rematch_epochs_reference_table(
    e0: int, delta: int, mu: int, table: list[int], full_200: list[int]
) -> None:
    # The formula fits the released lists; with 200 epochs it continues past the EU/CN lists,
    # which the released code stops earlier (reference §5.2).
    assert rematch_epochs(e0, delta, mu, 200) == full_200
    assert rematch_epochs(e0, delta, mu, 200)[: len(table)] == table
    assert rematch_epochs(e0, delta, mu, table[-1] + 1) == table
    assert rematch_epochs(e0, delta, mu, table[-1]) == table[:-1]


def test_rematch_epochs_edges_and_validation() -> None:
    assert rematch_epochs(0, 1, 0, 4) == [0, 1, 2, 3]
    assert rematch_epochs(10, 5, 0, 10) == []
    for args in [(-1, 5, 0, 10), (0, 0, 0, 10), (0, 5, -1, 10), (0, 5, 0, -1)]:
        with pytest.raises(ValueError):
            rematch_epochs(*args)


# --- DynM search ------------------------------------------------------------------------------


def brute_force_rematch(
    s_logits: np.ndarray,
    s_labels: np.ndarray,
    t_logits: np.ndarray,
    t_labels: np.ndarray,
    temperature: float,
) -> np.ndarray:
    best = []
    for i in range(len(s_logits)):
        p_s = softmax(s_logits[i] / temperature)
        scores = [
            entropy(softmax(t_logits[j] / temperature), p_s)
            if t_labels[j] == s_labels[i]
            else np.inf
            for j in range(len(t_logits))
        ]
        best.append(int(np.argmin(scores)))
    return np.array(best)


def random_logits(
    seed: int, n_student: int, n_teacher: int, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    s_logits = rng.normal(scale=3.0, size=(n_student, k))
    t_logits = rng.normal(scale=3.0, size=(n_teacher, k))
    s_labels = rng.integers(0, 4, n_student)
    t_labels = rng.permutation(np.arange(n_teacher) % 4)
    return s_logits, s_labels, t_logits, t_labels


@pytest.mark.parametrize("chunk_size", [1, 7, 4096])
def test_kl_rematch_equals_brute_force(chunk_size: int) -> None:
    s_logits, s_labels, t_logits, t_labels = random_logits(0, 50, 37, 6)
    expected = brute_force_rematch(s_logits, s_labels, t_logits, t_labels, 3.0)
    got = kl_rematch(
        f64(s_logits),
        torch.tensor(s_labels),
        f64(t_logits),
        torch.tensor(t_labels),
        temperature=3.0,
        chunk_size=chunk_size,
    )
    assert got.dtype == torch.long
    np.testing.assert_array_equal(got.numpy(), expected)
    np.testing.assert_array_equal(t_labels[got.numpy()], s_labels)


def test_kl_rematch_float32_finds_the_minimum_and_other_temperature() -> None:
    s_logits, s_labels, t_logits, t_labels = random_logits(1, 40, 60, 5)
    got = kl_rematch(
        torch.tensor(s_logits, dtype=torch.float32),
        torch.tensor(s_labels),
        torch.tensor(t_logits, dtype=torch.float32),
        torch.tensor(t_labels),
        temperature=1.5,
    ).numpy()
    for i, j in enumerate(got):
        p_s = softmax(s_logits[i] / 1.5)
        same = np.flatnonzero(t_labels == s_labels[i])
        kls = [entropy(softmax(t_logits[m] / 1.5), p_s) for m in same]
        assert t_labels[j] == s_labels[i]
        assert entropy(softmax(t_logits[j] / 1.5), p_s) == pytest.approx(min(kls), abs=1e-5)


def test_kl_rematch_ties_go_to_lowest_index() -> None:
    t_logits = torch.tensor([[0.0, 1.0], [2.0, 0.0], [2.0, 0.0], [2.0, 0.0]], dtype=torch.float64)
    t_labels = torch.tensor([1, 0, 1, 0])
    s_logits = torch.tensor([[3.0, 0.0], [0.0, 3.0], [1.0, 1.0]], dtype=torch.float64)
    got = kl_rematch(s_logits, torch.tensor([0, 0, 0]), t_logits, t_labels)
    assert got.tolist() == [1, 1, 1]


def test_kl_rematch_rejects_bad_input() -> None:
    s, t = torch.randn(3, 4), torch.randn(2, 4)
    with pytest.raises(ValueError, match=r"class\(es\) \[2\]"):
        kl_rematch(s, torch.tensor([0, 2, 0]), t, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="classes"):
        kl_rematch(s, torch.tensor([0, 0, 0]), torch.randn(2, 5), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="student_labels"):
        kl_rematch(s, torch.tensor([0, 0]), t, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="temperature"):
        kl_rematch(s, torch.tensor([0, 0, 0]), t, torch.tensor([0, 1]), temperature=0)


# --- CORAL ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("b", "d"), [(6, 5), (4, 11), (9, 3)])
def test_coral_gram_form_equals_direct_scatter_form(b: int, d: int) -> None:
    rng = np.random.default_rng(b * d)
    x = rng.normal(size=(b, d))
    y = 2.0 * rng.normal(size=(b, d)) + 0.5
    expected = coral_direct(x, y)
    assert float(coral_loss(f64(x), f64(y))) == pytest.approx(expected, rel=1e-10)
    x32, y32 = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    got32 = coral_loss(x32, y32)
    assert got32.dtype == torch.float32
    assert float(got32) == pytest.approx(expected, rel=1e-5)
    assert float(coral_loss(f64(x + 3.0), f64(y))) == pytest.approx(expected, rel=1e-10)
    assert float(coral_loss(x32 + 3.0, y32)) == pytest.approx(expected, rel=1e-5)


def test_coral_degenerate_cases_and_validation() -> None:
    x = torch.randn(5, 7)
    assert float(coral_loss(x, x + 1.0)) == pytest.approx(0.0, abs=1e-9)
    assert float(coral_loss(x[:1], torch.randn(1, 7))) == 0.0
    low = x.to(torch.bfloat16)  # computed in float32, as the float32 copy of the same values
    assert float(coral_loss(low, x)) == pytest.approx(float(coral_loss(low.float(), x)), rel=1e-6)
    with pytest.raises(ValueError, match="same shape"):
        coral_loss(x, torch.randn(5, 6))
    with pytest.raises(ValueError, match="same shape"):
        coral_loss(torch.randn(2, 3, 4), torch.randn(2, 3, 4))


# --- plan pieces ------------------------------------------------------------------------------


def test_token_attention_plan_and_column_importance() -> None:
    torch.manual_seed(0)
    module = TokenAttentionPlan(dim=16, heads=4).double()
    tokens = torch.randn(3, 9, 16, dtype=torch.float64)
    plan = module(tokens)
    expected = attention_np(tokens.numpy(), module.qk.weight.detach().numpy(), 4)
    np.testing.assert_allclose(plan.detach().numpy(), expected, rtol=1e-10)
    importance = column_importance(plan)
    assert importance.shape == (3, 4, 9)
    np.testing.assert_allclose(importance.sum(-1).detach().numpy(), 1.0, rtol=1e-12)
    np.testing.assert_allclose(importance.detach().numpy(), expected.mean(axis=2), rtol=1e-10)
    assert [name for name, _ in module.named_parameters()] == ["qk.weight"]
    with pytest.raises(ValueError, match="divisor"):
        TokenAttentionPlan(dim=10, heads=4)


def test_cross_modal_weights_is_the_released_outer_product() -> None:
    rng = np.random.default_rng(3)
    w_s = softmax(rng.normal(size=(2, 3, 4)), axis=-1)
    w_t = softmax(rng.normal(size=(2, 3, 9)), axis=-1)
    c_s, c_t = cross_modal_weights(f64(w_s), f64(w_t))
    outer = np.einsum("bhi,bhj->bhij", w_s, w_t)
    np.testing.assert_allclose(c_t.numpy(), outer.mean(axis=2) / w_t.mean(-1, keepdims=True))
    np.testing.assert_allclose(c_s.numpy(), outer.mean(axis=3) / w_s.mean(-1, keepdims=True))
    # The documented reduction when importances sum to one: a constant rescale.
    np.testing.assert_allclose(c_t.numpy(), w_t * 9 / 4, rtol=1e-12)
    np.testing.assert_allclose(c_s.numpy(), w_s * 4 / 9, rtol=1e-12)


def test_reweight_tokens_preserves_the_mean_token_norm() -> None:
    rng = np.random.default_rng(4)
    z = rng.normal(size=(3, 5, 6)) + 0.3
    a = rng.uniform(0.1, 2.0, size=(3, 5))
    got = reweight_tokens(f64(z), f64(a)).numpy()
    np.testing.assert_allclose(got, reweight_np(z, a), rtol=1e-12)
    np.testing.assert_allclose(
        np.linalg.norm(got.mean(axis=1), axis=-1), np.linalg.norm(z.mean(axis=1), axis=-1)
    )
    # A constant factor in the weights cancels.
    np.testing.assert_allclose(reweight_tokens(f64(z), f64(7 * a)).numpy(), got, rtol=1e-12)


def test_pool_tokens_averages_row_major_blocks() -> None:
    tokens = np.arange(2 * 16 * 3, dtype=np.float64).reshape(2, 16, 3)
    grid = tokens.reshape(2, 4, 4, 3)
    expected = grid.reshape(2, 2, 2, 2, 2, 3).mean(axis=(2, 4)).reshape(2, 4, 3)
    np.testing.assert_allclose(pool_tokens(f64(tokens), 2).numpy(), expected)
    assert pool_tokens(f64(tokens), 4).shape == (2, 16, 3)
    assert grid_side(49) == 7
    for bad in (0, 8, 15):
        with pytest.raises(ValueError, match="perfect square"):
            grid_side(bad)


def test_sinkhorn_plan_marginals_and_pot_reference() -> None:
    torch.manual_seed(5)
    teacher = torch.randn(3, 9, 8, dtype=torch.float64)
    student = torch.randn(3, 4, 8, dtype=torch.float64)
    plan = sinkhorn_plan(teacher, student, epsilon=0.1, n_iter=2000)
    assert plan.shape == (3, 4, 9)
    np.testing.assert_allclose(plan.sum(-1).numpy(), 1 / 4, atol=1e-6)
    np.testing.assert_allclose(plan.sum(-2).numpy(), 1 / 9, atol=1e-6)
    for b in range(3):
        s = student[b].numpy() / np.linalg.norm(student[b].numpy(), axis=1, keepdims=True)
        t = teacher[b].numpy() / np.linalg.norm(teacher[b].numpy(), axis=1, keepdims=True)
        cost = ((s[:, None] - t[None]) ** 2).sum(-1)
        expected = ot.sinkhorn(
            np.full(4, 1 / 4), np.full(9, 1 / 9), cost, 0.1, method="sinkhorn_log", stopThr=1e-12
        )
        np.testing.assert_allclose(plan[b].numpy(), expected, atol=1e-6)
    # Default iterations in float32: marginals close to uniform, gradients reach the student.
    student32 = student.float().requires_grad_(True)
    plan32 = sinkhorn_plan(teacher.float(), student32)
    np.testing.assert_allclose(plan32.sum(-2).detach().numpy(), 1 / 9, atol=1e-5)
    np.testing.assert_allclose(plan32.sum(-1).detach().numpy(), 1 / 4, atol=1e-3)
    (plan32 * torch.arange(36.0).reshape(4, 9)).sum().backward()
    assert student32.grad is not None and student32.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="epsilon"):
        sinkhorn_plan(teacher, student, epsilon=0.0)


# --- SemanticAlignment ------------------------------------------------------------------------


def features(b: int, n: int, c: int, seed: int, grad: bool) -> Features:
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randn(b, n, c, generator=gen).relu()
    embedding = torch.randn(b, 512, generator=gen)
    return Features(tokens.requires_grad_(grad), embedding.requires_grad_(grad))


def test_attention_alignment_equals_released_computation() -> None:
    torch.manual_seed(6)
    module = SemanticAlignment(16, 16, dim=16, heads=4).double()
    teacher = Features(torch.randn(5, 4, 16, dtype=torch.float64), torch.randn(5, 512).double())
    student = Features(torch.randn(5, 4, 16, dtype=torch.float64), torch.randn(5, 512).double())
    with torch.no_grad():
        losses = module(teacher, student)
    assert module.teacher_projection is None and module.student_projection is None
    assert module.teacher_plan is not None and module.student_plan is not None

    zt, zs = teacher.tokens.numpy(), student.tokens.numpy()
    w_t = attention_np(zt, module.teacher_plan.qk.weight.detach().numpy(), 4).mean(axis=2)
    w_s = attention_np(zs, module.student_plan.qk.weight.detach().numpy(), 4).mean(axis=2)
    outer = np.einsum("bhi,bhj->bhij", w_s, w_t)
    c_t = (outer.mean(axis=2) / w_t.mean(-1, keepdims=True)).mean(axis=1)
    c_s = (outer.mean(axis=3) / w_s.mean(-1, keepdims=True)).mean(axis=1)
    ref_t = reweight_np(zt, c_t).reshape(5, -1)
    ref_s = reweight_np(zs, c_s).reshape(5, -1)
    assert float(losses["ska_tokens"]) == pytest.approx(coral_direct(ref_t, ref_s), rel=1e-9)
    assert float(losses["ska_embedding"]) == pytest.approx(
        coral_direct(teacher.embedding.numpy(), student.embedding.numpy()), rel=1e-9
    )


def test_ot_alignment_equals_barycentric_reference() -> None:
    module = SemanticAlignment(8, 8, dim=8, plan="ot", ot_epsilon=0.2, ot_iters=3000).double()
    assert list(module.parameters()) == []
    torch.manual_seed(7)
    teacher = Features(torch.randn(4, 16, 8, dtype=torch.float64), torch.randn(4, 512).double())
    student = Features(torch.randn(4, 4, 8, dtype=torch.float64), torch.randn(4, 512).double())
    got = float(module(teacher, student)["ska_tokens"])
    zt = teacher.tokens.numpy().reshape(4, 2, 2, 2, 2, 8).mean(axis=(2, 4)).reshape(4, 4, 8)
    zs = student.tokens.numpy()
    transported = []
    for b in range(4):
        s = zs[b] / np.linalg.norm(zs[b], axis=1, keepdims=True)
        t = zt[b] / np.linalg.norm(zt[b], axis=1, keepdims=True)
        cost = ((s[:, None] - t[None]) ** 2).sum(-1)
        plan = ot.sinkhorn(
            np.full(4, 0.25), np.full(4, 0.25), cost, 0.2, method="sinkhorn_log", stopThr=1e-12
        )
        transported.append(plan @ zt[b] / plan.sum(axis=1, keepdims=True))
    expected = coral_direct(np.stack(transported).reshape(4, -1), zs.reshape(4, -1))
    assert got == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("plan", ["attention", "ot"])
@pytest.mark.parametrize("widths", [(512, 512), (1024, 512), (512, 1024)])
@pytest.mark.parametrize("counts", [(4, 16), (16, 4)])
def test_alignment_gradients_reach_every_parameter_and_the_student_only(
    plan: PlanKind, widths: tuple[int, int], counts: tuple[int, int]
) -> None:
    torch.manual_seed(8)
    module = SemanticAlignment(widths[0], widths[1], plan=plan)
    teacher = features(6, counts[0], widths[0], seed=1, grad=True)
    student = features(6, counts[1], widths[1], seed=2, grad=True)
    losses = module(teacher, student)
    assert set(losses) == {"ska_tokens", "ska_embedding"}
    assert all(torch.isfinite(v) and v.ndim == 0 and v > 0 for v in losses.values())
    torch.stack(list(losses.values())).sum().backward()
    names = {name for name, _ in module.named_parameters()}
    expected_names = set()
    if widths[0] != 512:
        expected_names.add("teacher_projection.weight")
    if widths[1] != 512:
        expected_names.add("student_projection.weight")
    if plan == "attention":
        expected_names |= {"teacher_plan.qk.weight", "student_plan.qk.weight"}
    assert names == expected_names
    for name, param in module.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert student.tokens.grad is not None and student.tokens.grad.abs().sum() > 0
    assert student.embedding.grad is not None and student.embedding.grad.abs().sum() > 0
    assert teacher.tokens.grad is None and teacher.embedding.grad is None


def test_alignment_flags_and_validation() -> None:
    teacher, student = features(4, 16, 512, 1, False), features(4, 16, 512, 2, False)
    only_embedding = SemanticAlignment(1024, 512, token_coral=False)
    assert list(only_embedding.parameters()) == []
    out = only_embedding(features(4, 15, 1024, 1, False), student)  # tokens are not read
    assert set(out) == {"ska_embedding"}
    only_tokens = SemanticAlignment(512, 512, embedding_coral=False)
    assert set(only_tokens(teacher, student)) == {"ska_tokens"}
    with pytest.raises(ValueError, match="token_coral or embedding_coral"):
        SemanticAlignment(512, 512, token_coral=False, embedding_coral=False)
    with pytest.raises(ValueError, match="plan must be"):
        SemanticAlignment(512, 512, plan="sinkhorn")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="perfect square"):
        only_tokens(features(4, 12, 512, 1, False), student)
    with pytest.raises(ValueError, match="teacher tokens B x N x 512"):
        only_tokens(features(4, 16, 1024, 1, False), student)
    with pytest.raises(ValueError, match="batch sizes differ"):
        only_tokens(features(3, 16, 512, 1, False), student)
