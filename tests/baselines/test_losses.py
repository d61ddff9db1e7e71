"""Golden values: every loss on fixed inputs against an independent NumPy computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from msrgb_bench.baselines import losses

RNG = np.random.default_rng(42)
B, K, D = 5, 6, 8
S_LOGITS = RNG.normal(scale=2.0, size=(B, K))
T_LOGITS = RNG.normal(scale=3.0, size=(B, K))
LABELS = np.array([0, 5, 2, 2, 1])
S_EMB = RNG.normal(scale=0.5, size=(B, D))
T_EMB = RNG.normal(scale=0.5, size=(B, D))


def tt(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float32)


def close(actual: torch.Tensor, expected: float) -> None:
    assert float(actual) == pytest.approx(expected, rel=1e-5, abs=1e-6)


# --- NumPy references ------------------------------------------------------------------------


def log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))


def kl_rows(log_p: np.ndarray, log_q: np.ndarray) -> np.ndarray:
    return (np.exp(log_p) * (log_p - log_q)).sum(axis=1)


def huber(a: np.ndarray, b: np.ndarray) -> float:
    d = np.abs(a - b)
    return float(np.where(d < 1.0, 0.5 * d**2, d - 0.5).mean())


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))


def by_positive_mean(m: np.ndarray) -> np.ndarray:
    return m / m[m > 0].mean()


def unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    return v / n if n > 0 else v


def angles(e: np.ndarray) -> np.ndarray:
    n = len(e)
    out = np.zeros((n, n, n))
    for i in range(n):
        for j in range(n):
            for k in range(n):
                out[i, j, k] = unit(e[j] - e[i]) @ unit(e[k] - e[i])
    return out


def expmap0(u: np.ndarray, c: float) -> np.ndarray:
    norm = np.linalg.norm(u, axis=1, keepdims=True)
    return np.tanh(math.sqrt(c) * norm) * u / (math.sqrt(c) * norm)


def mobius_add(x: np.ndarray, y: np.ndarray, c: float) -> np.ndarray:
    xy, x2, y2 = x @ y, x @ x, y @ y
    num = (1 + 2 * c * xy + c * y2) * x + (1 - c * x2) * y
    return num / (1 + 2 * c * xy + c**2 * x2 * y2)


def geodesic(a: np.ndarray, b: np.ndarray, c: float) -> np.ndarray:
    out = np.zeros((len(a), len(b)))
    for i in range(len(a)):
        for j in range(len(b)):
            norm = np.linalg.norm(mobius_add(-a[i], b[j], c))
            out[i, j] = 2 / math.sqrt(c) * math.atanh(math.sqrt(c) * norm)
    return out


# --- logit losses ----------------------------------------------------------------------------


def test_kd_on_a_case_worked_by_hand() -> None:
    # p_t = (3/4, 1/4), p_s = (1/2, 1/2): KL = 3/4 ln(3/2) + 1/4 ln(1/2)
    student = torch.zeros(1, 2)
    teacher = torch.tensor([[math.log(3.0), 0.0]])
    expected = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    close(losses.kd_kl_div(student, teacher, 1.0, scale_by_t2=False), expected)
    close(losses.kd_kl_div(teacher, teacher, 4.0), 0.0)


@pytest.mark.parametrize(("temperature", "t2"), [(3.0, False), (4.0, True), (1.0, True)])
def test_kd_kl_div(temperature: float, t2: bool) -> None:
    kl = kl_rows(log_softmax(T_LOGITS / temperature), log_softmax(S_LOGITS / temperature)).mean()
    expected = kl * temperature**2 if t2 else kl
    close(losses.kd_kl_div(tt(S_LOGITS), tt(T_LOGITS), temperature, t2), expected)


def test_logit_mse_by_hand() -> None:
    student = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    teacher = torch.zeros(2, 2)
    close(losses.logit_mse(student, teacher, "mean"), (1 + 4 + 9 + 16) / 4)
    close(losses.logit_mse(student, teacher, "sum"), ((1 + 4) + (9 + 16)) / 2)


def test_standardize_logits_uses_the_unbiased_std() -> None:
    expected = (S_LOGITS - S_LOGITS.mean(1, keepdims=True)) / (
        1e-7 + S_LOGITS.std(1, ddof=1, keepdims=True)
    )
    np.testing.assert_allclose(losses.standardize_logits(tt(S_LOGITS)).numpy(), expected, rtol=1e-5)


def test_lskd_composition() -> None:
    def z(x: np.ndarray) -> np.ndarray:
        return (x - x.mean(1, keepdims=True)) / (1e-7 + x.std(1, ddof=1, keepdims=True))

    expected = kl_rows(log_softmax(z(T_LOGITS) / 2), log_softmax(z(S_LOGITS) / 2)).mean() * 4
    actual = losses.kd_kl_div(
        losses.standardize_logits(tt(S_LOGITS)), losses.standardize_logits(tt(T_LOGITS)), 2.0
    )
    close(actual, expected)


def dkd_reference(alpha: float, beta: float, temperature: float) -> float:
    """mdistiller's formulation: binary (target, rest) KL and masked-logit non-target KL."""
    s, t = S_LOGITS / temperature, T_LOGITS / temperature
    gt = np.eye(K, dtype=bool)[LABELS]
    p_s, p_t = np.exp(log_softmax(s)), np.exp(log_softmax(t))
    b_s = np.stack([p_s[gt], np.where(gt, 0.0, p_s).sum(1)], axis=1)
    b_t = np.stack([p_t[gt], np.where(gt, 0.0, p_t).sum(1)], axis=1)
    tckd = (b_t * (np.log(b_t) - np.log(b_s))).sum() / B
    log_q_s, log_q_t = log_softmax(s - 1000.0 * gt), log_softmax(t - 1000.0 * gt)
    nckd = (np.exp(log_q_t) * (log_q_t - log_q_s)).sum() / B
    return (alpha * tckd + beta * nckd) * temperature**2


@pytest.mark.parametrize(("alpha", "beta", "temperature"), [(1.0, 8.0, 4.0), (2.0, 0.5, 1.0)])
def test_dkd_loss(alpha: float, beta: float, temperature: float) -> None:
    actual = losses.dkd_loss(
        tt(S_LOGITS), tt(T_LOGITS), torch.tensor(LABELS), alpha, beta, temperature
    )
    close(actual, dkd_reference(alpha, beta, temperature))


def test_dkd_is_zero_for_identical_logits() -> None:
    close(losses.dkd_loss(tt(T_LOGITS), tt(T_LOGITS), torch.tensor(LABELS), 1.0, 8.0, 4.0), 0.0)


def test_gradient_reversal_scales_the_gradient() -> None:
    x = torch.tensor([1.5, -2.0], requires_grad=True)
    y = losses.gradient_reversal(x, -0.25)
    assert torch.equal(y, x.detach())
    (y * torch.tensor([2.0, 3.0])).sum().backward()
    assert x.grad is not None
    torch.testing.assert_close(x.grad, torch.tensor([-0.5, -0.75]))


def test_cosine_schedule() -> None:
    values = [losses.cosine_schedule(e, 10, start=0.0, end=-1.0) for e in (0, 5, 10, 30)]
    assert values == pytest.approx([0.0, -0.5, -1.0, -1.0])
    assert losses.cosine_schedule(2, 5, 0.0, -1.0) == pytest.approx(
        0.5 * (math.cos(math.pi * 2 / 5) + 1) - 1
    )


# --- relational losses -----------------------------------------------------------------------


def test_pairwise_distances() -> None:
    np.testing.assert_allclose(
        losses.pairwise_distances(tt(S_EMB)).numpy(), distances(S_EMB, S_EMB), atol=1e-5
    )


def test_rkd_distance_loss() -> None:
    expected = huber(
        by_positive_mean(distances(S_EMB, S_EMB)), by_positive_mean(distances(T_EMB, T_EMB))
    )
    close(losses.rkd_distance_loss(tt(S_EMB), tt(T_EMB)), expected)


def test_rkd_angle_loss() -> None:
    close(losses.rkd_angle_loss(tt(S_EMB), tt(T_EMB)), huber(angles(S_EMB), angles(T_EMB)))


def test_rkd_losses_reach_zero_for_a_scaled_copy() -> None:
    # Both RKD terms are invariant to scaling the embedding space.
    close(losses.rkd_distance_loss(tt(3 * T_EMB), tt(T_EMB)), 0.0)
    close(losses.rkd_angle_loss(tt(3 * T_EMB), tt(T_EMB)), 0.0)


def test_rkd_gives_the_student_a_gradient() -> None:
    student = tt(S_EMB).requires_grad_()
    teacher = tt(T_EMB).requires_grad_()
    (
        losses.rkd_distance_loss(student, teacher) + losses.rkd_angle_loss(student, teacher)
    ).backward()
    assert student.grad is not None and float(student.grad.abs().sum()) > 0
    assert teacher.grad is None


def test_poincare_map_and_distance() -> None:
    c = 0.1
    points = losses.to_poincare(tt(S_EMB), c)
    np.testing.assert_allclose(points.numpy(), expmap0(S_EMB, c), rtol=1e-5, atol=1e-6)
    other = losses.to_poincare(tt(T_EMB), c)
    np.testing.assert_allclose(
        losses.poincare_distance_matrix(points, other, c).numpy(),
        geodesic(expmap0(S_EMB, c), expmap0(T_EMB, c), c),
        rtol=1e-4,
        atol=1e-5,
    )


def test_rkdg_loss() -> None:
    c = 0.1
    geo_s = geodesic(expmap0(S_EMB, c), expmap0(S_EMB, c), c)
    geo_t = geodesic(expmap0(T_EMB, c), expmap0(T_EMB, c), c)
    np.fill_diagonal(geo_s, 0.0)
    np.fill_diagonal(geo_t, 0.0)
    dist = huber(
        by_positive_mean(distances(S_EMB, S_EMB)), by_positive_mean(distances(T_EMB, T_EMB))
    )
    angle = huber(angles(S_EMB), angles(T_EMB))
    geo = huber(by_positive_mean(geo_s), by_positive_mean(geo_t))
    actual = losses.rkdg_loss(tt(S_EMB), tt(T_EMB), c, 2.0, 3.0, 5.0)
    assert float(actual) == pytest.approx(2 * dist + 3 * angle + 5 * geo, rel=1e-4)


def test_cross_agent_losses() -> None:
    c = 0.1
    s = S_EMB / np.linalg.norm(S_EMB, axis=1, keepdims=True)
    t = T_EMB / np.linalg.norm(T_EMB, axis=1, keepdims=True)
    ps, pt = expmap0(s, c), expmap0(t, c)

    def mse(a: np.ndarray, b: np.ndarray) -> float:
        return float(((a - b) ** 2).mean())

    relations = {
        "distance": (distances(s, s), distances(s, t), distances(t, t)),
        "similarity": (s @ s.T, s @ t.T, t @ t.T),
        "geodesic": (geodesic(ps, ps, c), geodesic(ps, pt, c), geodesic(pt, pt, c)),
    }
    actual = losses.cross_agent_losses(tt(S_EMB), tt(T_EMB), c, 0.1, 0.3)
    assert set(actual) == set(relations)
    for name, (ss, st, tt_) in relations.items():
        expected = 0.1 * mse(ss, st) + 0.3 * mse(st, tt_)
        assert float(actual[name]) == pytest.approx(expected, rel=1e-4, abs=1e-7), name
