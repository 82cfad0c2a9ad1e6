"""Independent PyTorch references for the Wan2.1 family (transformer, causal 3D VAE,
umT5 encoder), written from the published architectures and keyed by the diffusers /
Hugging Face tensor names, so a state dict moves between these modules, the published
checkpoints and the TypeScript engine unchanged. NCDHW layout throughout."""

from .clip_vision import ClipVisionModel
from .safetensors_io import read_safetensors, write_safetensors
from .rng import tessera_randn
from .sampling import (
    UniPC,
    euler_schedule,
    expert_at,
    flow_matching_pair,
    flow_sigmas,
    sample,
    sample_guided,
    sample_two_experts,
    unipc_schedule,
)
from .umt5 import UMT5Encoder, relative_position_bucket
from .wan_transformer import WanTransformer
from .wan_vae import WanVAE

__all__ = [
    "ClipVisionModel",
    "WanTransformer",
    "WanVAE",
    "UMT5Encoder",
    "relative_position_bucket",
    "sample",
    "sample_two_experts",
    "expert_at",
    "sample_guided",
    "UniPC",
    "euler_schedule",
    "unipc_schedule",
    "tessera_randn",
    "flow_sigmas",
    "flow_matching_pair",
    "read_safetensors",
    "write_safetensors",
]
