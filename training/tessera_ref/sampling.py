"""Rectified-flow sampling and training pairs, as Wan2.1 is trained.

Convention (Wan / diffusers FlowMatchEulerDiscreteScheduler): x_σ = (1 − σ)·x₀ + σ·ε,
the model predicts the velocity v = ε − x₀ at timestep t = 1000·σ, and an Euler step
from σ to σ' is x += (σ' − σ)·v. The "shift" warps a uniform σ grid towards the noisy
end, σ' = s·σ / (1 + (s − 1)·σ), as the Wan pipelines do (s = 3 at 480p, 5 at 720p)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

NUM_TRAIN_TIMESTEPS = 1000


def shift_sigma(sigma: torch.Tensor, shift: float) -> torch.Tensor:
    return shift * sigma / (1 + (shift - 1) * sigma)


def flow_sigmas(steps: int, shift: float = 3.0, dtype=torch.float64) -> torch.Tensor:
    """steps + 1 noise levels from 1 down to 0 (the last is the clean sample)."""
    return shift_sigma(torch.linspace(1.0, 0.0, steps + 1, dtype=dtype), shift)


def flow_matching_pair(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor):
    """Training input and target for per-sample noise levels sigma [B] in [0, 1]:
    returns (x_sigma, timestep = 1000·sigma, velocity target ε − x₀)."""
    s = sigma.to(x0.dtype).view(-1, *([1] * (x0.ndim - 1)))
    return (1 - s) * x0 + s * noise, sigma * NUM_TRAIN_TIMESTEPS, noise - x0


@torch.no_grad()
def sample(
    model: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    noise: torch.Tensor,
    context: torch.Tensor,
    steps: int = 30,
    shift: float = 3.0,
    guidance_scale: float = 1.0,
    negative_context: torch.Tensor | None = None,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Euler integration of the velocity field from pure noise (σ = 1) to a sample (σ = 0).

    model(x [B, C, F, H, W], t [B], context [B, L, D]) -> velocity like x. With
    guidance_scale ≠ 1 and a negative_context, classifier-free guidance
    v = v_neg + g·(v_pos − v_neg) (both passes batched together)."""
    sigmas = flow_sigmas(steps, shift)
    x = noise
    b = x.shape[0]
    cfg = guidance_scale != 1.0 and negative_context is not None
    for i in range(steps):
        t = torch.full((b,), float(sigmas[i]) * NUM_TRAIN_TIMESTEPS, dtype=torch.float32, device=x.device)
        if cfg:
            v_pos, v_neg = model(
                torch.cat([x, x]), torch.cat([t, t]), torch.cat([context, negative_context])
            ).chunk(2)
            v = v_neg + guidance_scale * (v_pos - v_neg)
        else:
            v = model(x, t, context)
        x = x + float(sigmas[i + 1] - sigmas[i]) * v.to(x.dtype)
        if callback is not None:
            callback(i, x)
    return x


# ---------------------------------------------------------------------------------------
# The schedules and solvers Wan samples with, as diffusers configures them for Wan, in
# float64: FlowMatchEulerDiscreteScheduler(shift) and UniPCMultistepScheduler(use_flow_sigmas,
# flow_shift, prediction_type="flow_prediction", solver_order=2, solver_type="bh2",
# predict_x0, lower_order_final, final_sigmas_type="zero"). Written from the published
# algorithms (UniPC: Zhao et al. 2023, arXiv 2302.04867, Algorithms 2 and 3, the B(h)
# variants), with the schedule details that decide the numbers (where σ starts, which
# timestep the model is given) as diffusers sets them.


def euler_schedule(steps: int, shift: float, T: int = NUM_TRAIN_TIMESTEPS):
    """FlowMatchEulerDiscreteScheduler.set_timesteps(steps) with a static shift: the
    training table's ends (σ = 1 and σ = 1/T, each shifted) bound `steps` evenly spaced
    values, which are shifted again. Returns (sigmas [steps + 1] ending in 0, the model's
    timesteps σ·T [steps]), float64."""
    s_max = shift_sigma(torch.tensor(1.0, dtype=torch.float64), shift)
    s_min = shift_sigma(torch.tensor(1.0 / T, dtype=torch.float64), shift)
    raw = torch.linspace(float(s_max) * T, float(s_min) * T, steps, dtype=torch.float64) / T
    sig = shift_sigma(raw, shift)
    return torch.cat([sig, sig.new_zeros(1)]), sig * T


def unipc_schedule(steps: int, shift: float, T: int = NUM_TRAIN_TIMESTEPS):
    """UniPC's flow sigmas: σ_k = k·(1 − 1/T)/steps for k = steps..1, shifted (so the
    first σ is shift(1 − 1/T), just under 1), then a final 0. The model is given σ·T
    truncated to an integer (diffusers casts the timesteps to int64). Returns (sigmas
    [steps + 1], timesteps [steps]), float64."""
    k = torch.arange(steps, 0, -1, dtype=torch.float64)
    sig = shift_sigma(k * (1.0 - 1.0 / T) / steps, shift)
    return torch.cat([sig, sig.new_zeros(1)]), torch.trunc(sig * T)


def _lam(sigma: float) -> float:
    """Half log-SNR of x = (1 − σ)·x₀ + σ·ε: log α − log σ (+inf at σ = 0)."""
    return math.inf if sigma == 0 else math.log(1.0 - sigma) - math.log(sigma)


class UniPC:
    """UniPC with data (x₀) prediction on the flow path, B(h) = e^h − 1 ("bh2") or h ("bh1").

    Each call of step(v, x, i) turns the velocity into x₀ = x − σᵢ·v, corrects the sample
    the previous predictor made (UniC, order of that predictor, using this x₀: no extra
    model call), then predicts the sample at σᵢ₊₁ (UniP). The order warms up one step at a
    time to `order` and, with lower_order_final, drops so as not to reach past the
    schedule's end (the last step is first order, which lands on x₀ at σ = 0)."""

    def __init__(self, sigmas: torch.Tensor, order: int = 2, bh: str = "bh2", lower_order_final: bool = True):
        self.s = [float(x) for x in sigmas]
        self.n = len(self.s) - 1
        self.max_order = order
        self.bh = bh
        self.lower_order_final = lower_order_final
        self.x0s: list[torch.Tensor] = []  # newest last
        self.prev_x: torch.Tensor | None = None  # the sample the last predictor started from
        self.prev_order = 0

    def _coeffs(self, s_to: float, s_from: float, past: list[float], order: int, corrector: bool):
        """h, the φ/B(h) scalars and the ρ weights for an update from s_from to s_to.
        `past` holds the σ of the older x₀ (newest first) used as extra interpolation points."""
        h = _lam(s_to) - _lam(s_from)
        rs = [(_lam(sp) - _lam(s_from)) / h for sp in past]
        hh = -h  # data prediction integrates in −h
        phi1 = math.expm1(hh)  # h·φ₁ in the paper's notation, e^{−h} − 1
        B = math.expm1(hh) if self.bh == "bh2" else hh
        # Right-hand side gₖ = k!·φₖ₊₁(−h)·… / B(h), from the recursion φₖ₊₁ = (φₖ − 1/k!)/(−h).
        g, phik, fact = [], phi1 / hh - 1.0, 1.0
        for k in range(1, order + 1):
            g.append(phik * fact / B)
            fact *= k + 1
            phik = phik / hh - 1.0 / fact
        if corrector:
            if order == 1:
                rho = [0.5]
            else:
                nodes = rs + [1.0]
                R = torch.tensor([[r**j for r in nodes] for j in range(order)], dtype=torch.float64)
                rho = torch.linalg.solve(R, torch.tensor(g, dtype=torch.float64)).tolist()
        elif order == 1:
            rho = []
        elif order == 2:
            rho = [0.5]  # the published UniP-2 uses ρ = 1/2 (the solve's small-h limit)
        else:
            R = torch.tensor([[r**j for r in rs] for j in range(order - 1)], dtype=torch.float64)
            rho = torch.linalg.solve(R, torch.tensor(g[: order - 1], dtype=torch.float64)).tolist()
        return phi1, B, rs, rho

    def _update(self, x, s_to, s_from, m0, older, past, order, corrector, m_new=None):
        phi1, B, rs, rho = self._coeffs(s_to, s_from, past, order, corrector)
        a_to = 1.0 - s_to
        out = (s_to / s_from) * x - a_to * phi1 * m0
        for k, (mk, rk) in enumerate(zip(older, rs)):
            out = out - a_to * B * rho[k] * (mk - m0) / rk
        if corrector:
            out = out - a_to * B * rho[-1] * (m_new - m0)
        return out

    def step(self, v: torch.Tensor, x: torch.Tensor, i: int) -> torch.Tensor:
        x0 = x - self.s[i] * v
        if i > 0 and self.prev_x is not None:
            # UniC: redo the last step (σᵢ₋₁ → σᵢ) with the new x₀ as an extra node.
            p = self.prev_order
            older = [self.x0s[-1 - k] for k in range(1, p)]
            past = [self.s[i - 1 - k] for k in range(1, p)]
            x = self._update(self.prev_x, self.s[i], self.s[i - 1], self.x0s[-1], older, past, p, True, x0)
        self.x0s = (self.x0s + [x0])[-self.max_order :]
        order = min(self.max_order, self.n - i) if self.lower_order_final else self.max_order
        order = min(order, len(self.x0s))
        self.prev_x, self.prev_order = x, order
        older = [self.x0s[-1 - k] for k in range(1, order)]
        past = [self.s[i - k] for k in range(1, order)]
        return self._update(x, self.s[i + 1], self.s[i], x0, older, past, order, False)


@torch.no_grad()
def sample_guided(
    model: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    noise: torch.Tensor,
    context: torch.Tensor,
    negative_context: torch.Tensor | None,
    guidance_scale: float,
    solver: str,
    steps: int,
    shift: float,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Wan's text-to-video loop as diffusers' WanPipeline runs it: the noise is the sample at
    the first σ, each step gives the model the schedule's timestep, guidance (when
    guidance_scale > 1) combines v_neg + g·(v_pos − v_neg), and the solver ("euler" or
    "unipc") advances the sample. Returns the sample after the last step (σ = 0)."""
    if solver == "euler":
        sigmas, timesteps = euler_schedule(steps, shift)
        unipc = None
    elif solver == "unipc":
        sigmas, timesteps = unipc_schedule(steps, shift)
        unipc = UniPC(sigmas)
    else:
        raise ValueError(f"unknown solver {solver!r}")
    x = noise
    b = x.shape[0]
    cfg = guidance_scale > 1.0 and negative_context is not None
    for i in range(steps):
        t = torch.full((b,), float(timesteps[i]), dtype=x.dtype, device=x.device)
        v = model(x, t, context)
        if cfg:
            v_neg = model(x, t, negative_context)
            v = v_neg + guidance_scale * (v - v_neg)
        if unipc is None:
            x = x + float(sigmas[i + 1] - sigmas[i]) * v
        else:
            x = unipc.step(v, x, i)
        if callback is not None:
            callback(i, x)
    return x
