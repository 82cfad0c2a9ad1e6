"""Rectified-flow sampling and training pairs, as Wan2.1 is trained.

Convention (Wan / diffusers FlowMatchEulerDiscreteScheduler): x_σ = (1 − σ)·x₀ + σ·ε,
the model predicts the velocity v = ε − x₀ at timestep t = 1000·σ, and an Euler step
from σ to σ' is x += (σ' − σ)·v. The "shift" warps a uniform σ grid towards the noisy
end, σ' = s·σ / (1 + (s − 1)·σ), as the Wan pipelines do (s = 3 at 480p, 5 at 720p)."""

from __future__ import annotations

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


def expert_at(t: float, boundary: float | None) -> int:
    """Wan2.2 A14B's hand-over (diffusers' WanPipeline): the first (high-noise) expert
    at timesteps t >= boundary = boundary_ratio · num_train_timesteps, the second below."""
    return 0 if boundary is None or t >= boundary else 1


@torch.no_grad()
def sample_two_experts(
    experts: list[Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]],
    noise: torch.Tensor,
    context: torch.Tensor,
    negative_context: torch.Tensor,
    sigmas: list[float],
    timesteps: list[float],
    boundary: float,
    guidance_scale: float,
    guidance_scale_2: float | None = None,
) -> tuple[torch.Tensor, list[int]]:
    """Euler over explicit noise levels (sigmas, with the final 0 appended; the model
    is given timesteps[i]) with two experts, as diffusers' WanPipeline runs Wan2.2
    A14B: step i runs experts[expert_at(timesteps[i], boundary)] with guidance_scale
    (first expert) or guidance_scale_2 (second; guidance_scale when None); both
    branches batched (conditional first) when guidance_scale > 1. Returns the sample
    and the expert of each step."""
    g2 = guidance_scale if guidance_scale_2 is None else guidance_scale_2
    cfg = guidance_scale > 1.0
    sig = [float(s) for s in sigmas] + [0.0]
    x = noise
    b = x.shape[0]
    chosen = []
    for i, t_i in enumerate(timesteps):
        e = expert_at(float(t_i), boundary)
        chosen.append(e)
        model = experts[e]
        g = guidance_scale if e == 0 else g2
        t = torch.full((b,), float(t_i), dtype=x.dtype, device=x.device)
        if cfg:
            v_pos, v_neg = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([context, negative_context])).chunk(2)
            v = v_neg + g * (v_pos - v_neg)
        else:
            v = model(x, t, context)
        x = x + (sig[i + 1] - sig[i]) * v.to(x.dtype)
    return x, chosen
