"""Writes wan-vae-golden.json: diffusers' AutoencoderKLWan run on the weights and inputs
that vae.test.ts dumps, so the test can check our VAE against the reference code itself.

    TESSERA_WAN_VAE_GOLDEN_DUMP=/tmp/wvae-dump npx vitest run src/models/wan-vae   # dump weights + inputs
    python3 make_golden.py /tmp/wvae-dump path/to/autoencoder_kl_wan.py wan-vae-golden.json [diffusers-commit]

Needs torch (1.13+) and numpy only: the diffusers module is loaded with its package-level
imports stubbed, since nothing it uses from them affects the numbers.
"""
import importlib.util, json, math, sys, types

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

if not hasattr(F, "scaled_dot_product_attention"):  # torch < 2.0

    def _sdpa(q, k, v):
        return (q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])).softmax(-1) @ v

    F.scaled_dot_product_attention = _sdpa


def load_diffusers_module(path):
    def mod(name, **attrs):
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        sys.modules[name] = m
        return m

    class ConfigMixin:
        pass

    def register_to_config(f):
        import inspect

        sig = inspect.signature(f)

        def w(self, *a, **k):
            f(self, *a, **k)
            b = sig.bind(self, *a, **k)
            b.apply_defaults()
            object.__setattr__(self, "_cfg", types.SimpleNamespace(**{n: v for n, v in b.arguments.items() if n != "self"}))

        return w

    class ModelMixin(nn.Module):
        @property
        def config(self):
            return self._cfg

    class DecoderOutput:
        def __init__(self, sample):
            self.sample = sample

    class Posterior:
        def __init__(self, p):
            self.mean, self.logvar = torch.chunk(p, 2, dim=1)

        def mode(self):
            return self.mean

    class KLOutput:
        def __init__(self, latent_dist):
            self.latent_dist = latent_dist

    import logging as std_logging

    for p in ["fd", "fd.models", "fd.models.autoencoders", "fd.utils"]:
        mod(p).__path__ = []
    mod("fd.configuration_utils", ConfigMixin=ConfigMixin, register_to_config=register_to_config)
    mod("fd.loaders", FromOriginalModelMixin=type("FromOriginalModelMixin", (), {}))
    sys.modules["fd.utils"].logging = types.SimpleNamespace(get_logger=std_logging.getLogger)
    mod("fd.utils.accelerate_utils", apply_forward_hook=lambda f: f)
    mod("fd.models.activations", get_activation=lambda name: nn.SiLU())
    mod("fd.models.modeling_outputs", AutoencoderKLOutput=KLOutput)
    mod("fd.models.modeling_utils", ModelMixin=ModelMixin)
    mod(
        "fd.models.autoencoders.vae",
        AutoencoderMixin=type("AutoencoderMixin", (), {}),
        DecoderOutput=DecoderOutput,
        DiagonalGaussianDistribution=Posterior,
    )
    spec = importlib.util.spec_from_file_location("fd.models.autoencoders.autoencoder_kl_wan", path)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def main(dump, diffusers_file, out, ref="?"):
    meta = json.load(open(f"{dump}/meta.json"))
    cfg = meta["config"]
    AutoencoderKLWan = load_diffusers_module(diffusers_file).AutoencoderKLWan
    keys = ["base_dim", "z_dim", "dim_mult", "num_res_blocks", "attn_scales", "temperal_downsample", "dropout",
            "latents_mean", "latents_std"]
    vae = AutoencoderKLWan(**{k: cfg[k] for k in keys}).eval()
    raw = np.fromfile(f"{dump}/weights.bin", dtype=np.float32)
    sd, off = {}, 0
    for e in meta["weights"]:
        n = int(np.prod(e["shape"]))
        sd[e["name"]] = torch.from_numpy(raw[off:off + n].reshape(e["shape"]).copy())
        off += n
    vae.load_state_dict(sd, strict=True)

    def tensor(name):
        shape = meta["tensors"][name]
        t = torch.from_numpy(np.fromfile(f"{dump}/{name}.bin", dtype=np.float32).reshape(shape))
        return t.permute(0, 4, 1, 2, 3).contiguous()  # channels-last -> [B, C, T, H, W]

    mean = torch.tensor(cfg["latents_mean"]).view(1, -1, 1, 1, 1)
    std = torch.tensor(cfg["latents_std"]).view(1, -1, 1, 1, 1)
    stride = meta["decodeStride"]
    with torch.no_grad():
        z = (vae.encode(tensor("video")).latent_dist.mode() - mean) / std
        y = vae.decode(tensor("latent") * std + mean).sample
    cl = lambda t: t.permute(0, 2, 3, 4, 1).contiguous()  # back to channels-last
    json.dump(
        {
            "source": "diffusers AutoencoderKLWan (commit " + ref + "), torch " + torch.__version__ + ", f32 CPU",
            "encode": {"shape": list(cl(z).shape), "values": [float(f"{v:.7g}") for v in cl(z).flatten().tolist()]},
            "decode": {"shape": list(cl(y).shape), "stride": stride,
                       "values": [float(f"{v:.7g}") for v in cl(y).flatten()[::stride].tolist()]},
        },
        open(out, "w"),
    )


if __name__ == "__main__":
    main(*sys.argv[1:5])
