"""A Mamba-1 language model with mamba_ssm's weights layout, on the shared selective-scan kernel (over 300 lines:
the model in one readable file, config, layers, init and its three ways to run, as nanoGPT keeps its GPT).

One set of weights, three ways to run it:
  forward(ids)                 the whole sequence at once;
  forward(ids, state)          a chunk that resumes from the state of the previous chunk;
  step(ids, state)             one token at a time (decoding).
All three give the same logits. The state of a layer is the last d_conv - 1 inputs of its
convolution and the (d_inner, d_state) SSM state.

State-dict keys are exactly mamba_ssm's (backbone.embedding.weight, backbone.layers.{i}.norm.*,
backbone.layers.{i}.mixer.*, backbone.norm_f.*, lm_head.weight), so released checkpoints load as is.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

import torch
import torch.nn.functional as F
from torch import nn

from robustbench_bytes import kernels
from robustbench_bytes.models.base import check_config_fields
from robustbench_bytes.models.layers import Conv1d, Embedding, Linear

SSM_DEFAULTS = {
    "d_state": 16,
    "d_conv": 4,
    "expand": 2,
    "dt_rank": "auto",
    "dt_min": 0.001,
    "dt_max": 0.1,
    "dt_init": "random",
    "dt_scale": 1.0,
    "dt_init_floor": 1e-4,
    "conv_bias": True,
    "bias": False,
}
# mamba_ssm ssm_cfg keys that change nothing in the network's function.
SSM_IGNORED = {"use_fast_path", "layer"}


@dataclass
class MambaConfig:
    """mamba_ssm's config.json fields (MambaLMHeadModel)."""

    d_model: int
    n_layer: int
    vocab_size: int
    ssm_cfg: dict = field(default_factory=dict)
    rms_norm: bool = True
    residual_in_fp32: bool = True
    fused_add_norm: bool = True
    pad_vocab_size_multiple: int = 8
    tie_embeddings: bool = True
    norm_epsilon: float = 1e-5
    d_intermediate: int = 0

    REQUIRED = ("d_model", "n_layer", "vocab_size")

    def __post_init__(self):
        check_config_fields(asdict(self), ints=("d_model", "n_layer", "vocab_size", "pad_vocab_size_multiple"),
                            bools=("rms_norm", "residual_in_fp32", "fused_add_norm", "tie_embeddings"),
                            numbers=("norm_epsilon",))
        if not isinstance(self.ssm_cfg, dict):
            raise ValueError(f"ssm_cfg = {self.ssm_cfg!r}; expected an object")
        check_config_fields({**SSM_DEFAULTS, **self.ssm_cfg}, ints=("d_state", "d_conv"),
                            numbers=("expand", "dt_min", "dt_max", "dt_scale", "dt_init_floor"))
        if self.d_inner < 1:
            raise ValueError(f"ssm_cfg.expand = {self.ssm('expand')!r}: expand * d_model must be at least 1")
        if self.ssm("dt_rank") != "auto":
            check_config_fields(self.ssm_cfg, ints=("dt_rank",))
        unknown = set(self.ssm_cfg) - set(SSM_DEFAULTS) - SSM_IGNORED
        if unknown:
            raise ValueError(f"ssm_cfg: unsupported field(s) {', '.join(sorted(unknown))}")
        if self.ssm_cfg.get("layer", "Mamba1") != "Mamba1":
            raise ValueError(f"ssm_cfg.layer={self.ssm_cfg['layer']!r}: only Mamba1 is supported")
        if self.d_intermediate:
            raise ValueError("d_intermediate != 0 (MLP blocks) is not supported")

    @classmethod
    def from_dict(cls, d: dict) -> "MambaConfig":
        """Builds the config from a config.json dict; extra top-level keys are ignored."""
        missing = [k for k in cls.REQUIRED if k not in d]
        if missing:
            raise KeyError(missing[0])
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in known}
        if kwargs.get("ssm_cfg") is None:
            kwargs["ssm_cfg"] = {}
        elif isinstance(kwargs["ssm_cfg"], dict):
            kwargs["ssm_cfg"] = dict(kwargs["ssm_cfg"])
        if d.get("attn_layer_idx"):
            raise ValueError("attn_layer_idx: attention layers are not supported")
        return cls(**kwargs)

    def to_dict(self) -> dict:
        return asdict(self)

    def ssm(self, key):
        return self.ssm_cfg.get(key, SSM_DEFAULTS[key])

    @property
    def d_inner(self) -> int:
        return int(self.ssm("expand") * self.d_model)

    @property
    def d_state(self) -> int:
        return int(self.ssm("d_state"))

    @property
    def d_conv(self) -> int:
        return int(self.ssm("d_conv"))

    @property
    def dt_rank(self) -> int:
        r = self.ssm("dt_rank")
        return math.ceil(self.d_model / 16) if r == "auto" else int(r)

    @property
    def padded_vocab_size(self) -> int:
        m = self.pad_vocab_size_multiple
        return self.vocab_size + (-self.vocab_size) % m if m > 1 else self.vocab_size


@dataclass
class MambaState:
    """Per-layer recurrent state: conv[i] (b, d_inner, d_conv-1) and ssm[i] (b, d_inner, d_state), float32."""

    conv: list
    ssm: list

    def detach(self) -> "MambaState":
        return MambaState([c.detach() for c in self.conv], [s.detach() for s in self.ssm])

    def clone(self) -> "MambaState":
        return MambaState([c.clone() for c in self.conv], [s.clone() for s in self.ssm])

    def select(self, index) -> "MambaState":
        """The state of a subset of the batch (index: tensor or slice over the batch dimension)."""
        return MambaState([c[index] for c in self.conv], [s[index] for s in self.ssm])


class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * self.weight.float()).to(x.dtype)


def _weight_times(W, x):
    """W (o, i) @ x (b, i, L) -> (b, o, L) contiguous, one 2-D product per batch row (a batched matmul
    of these shapes computes x^T W^T and then transposes the result in memory, which costs as much)."""
    if x.shape[0] == 1:
        return (W @ x[0]).unsqueeze(0)
    return torch.stack([W @ xi for xi in x])


class MambaMixer(nn.Module):
    """mamba_ssm's Mamba (v1) mixer."""

    def __init__(self, cfg: MambaConfig):
        super().__init__()
        d, di, n, k, r = cfg.d_model, cfg.d_inner, cfg.d_state, cfg.d_conv, cfg.dt_rank
        self.d_inner, self.d_state, self.d_conv, self.dt_rank = di, n, k, r
        bias = bool(cfg.ssm("bias"))
        self.in_proj = Linear(d, 2 * di, bias=bias)
        self.conv1d = Conv1d(di, di, k, groups=di, padding=k - 1, bias=bool(cfg.ssm("conv_bias")))
        self.x_proj = Linear(di, r + 2 * n, bias=False)
        self.dt_proj = Linear(r, di, bias=True)
        self.A_log = nn.Parameter(torch.empty(di, n))
        self.D = nn.Parameter(torch.empty(di))
        self.out_proj = Linear(di, d, bias=bias)
        self.A_log._no_weight_decay = True
        self.D._no_weight_decay = True
        self.scan_backend = "auto"
        if not self.A_log.is_meta:
            self._init_ssm(cfg)

    @torch.no_grad()
    def _init_ssm(self, cfg: MambaConfig):
        """mamba_ssm's initialisation of dt_proj, A_log and D (S4D-real A, dt log-uniform in [dt_min, dt_max])."""
        std = self.dt_rank ** -0.5 * cfg.ssm("dt_scale")
        if cfg.ssm("dt_init") == "constant":
            nn.init.constant_(self.dt_proj.weight, std)
        elif cfg.ssm("dt_init") == "random":
            nn.init.uniform_(self.dt_proj.weight, -std, std)
        else:
            raise ValueError(f"ssm_cfg.dt_init={cfg.ssm('dt_init')!r}; expected 'random' or 'constant'")
        lo, hi = math.log(cfg.ssm("dt_min")), math.log(cfg.ssm("dt_max"))
        dt = torch.exp(torch.rand(self.d_inner) * (hi - lo) + lo).clamp(min=cfg.ssm("dt_init_floor"))
        self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse of softplus
        self.dt_proj.bias._no_reinit = True
        a = torch.arange(1, self.d_state + 1, dtype=torch.float32)
        self.A_log.copy_(torch.log(a).expand(self.d_inner, -1))
        self.D.fill_(1.0)

    def _ssm_inputs(self, x):
        """x (..., d_inner) -> delta before bias (..., d_inner), B, C (..., d_state)."""
        dbc = self.x_proj(x)
        dt, B, C = torch.split(dbc, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        return F.linear(dt, self.dt_proj.weight), B, C

    def forward(self, h, conv_state=None, ssm_state=None):
        """h (b, L, d_model) -> (out (b, L, d_model), conv_state, ssm_state).

        Works channel-first, (b, channels, L), as the scan wants it: the projections are computed as
        W @ h^T so that no (b, d_inner, L) tensor has to be transposed in memory."""
        b, L, _ = h.shape
        xz = _weight_times(self.in_proj.weight, h.transpose(1, 2))  # (b, 2*d_inner, L)
        if self.in_proj.bias is not None:
            xz = xz + self.in_proj.bias[:, None].to(xz.dtype)
        x, z = xz[:, :self.d_inner], xz[:, self.d_inner:]
        if conv_state is None:
            conv_state = x.new_zeros(b, self.d_inner, self.d_conv - 1)
        xc = torch.cat([conv_state.to(x.dtype), x], dim=-1)
        # a copy, not a view: a view would keep this chunk's whole (b, d_inner, L) input alive
        new_conv_state = xc[:, :, xc.shape[-1] - (self.d_conv - 1):].float().clone()
        x = F.silu(F.conv1d(xc, self.conv1d.weight, self.conv1d.bias, groups=self.d_inner))
        dbc = _weight_times(self.x_proj.weight, x)  # (b, dt_rank + 2*d_state, L)
        dt, B, C = torch.split(dbc, [self.dt_rank, self.d_state, self.d_state], dim=1)
        delta = _weight_times(self.dt_proj.weight, dt)  # (b, d_inner, L); its bias goes to the scan
        A = -torch.exp(self.A_log.float())
        y, new_ssm_state = kernels.selective_scan(
            x, delta, A, B, C, self.D.float(), z=z, delta_bias=self.dt_proj.bias.float(),
            delta_softplus=True, initial_state=ssm_state, return_last_state=True, backend=self.scan_backend)
        return self.out_proj(y.transpose(1, 2)), new_conv_state, new_ssm_state

    def step(self, h, conv_state, ssm_state):
        """h (b, d_model) -> out (b, d_model); conv_state (b, d_inner, d_conv-1) is returned anew,
        ssm_state (b, d_inner, d_state) is updated in place."""
        x, z = self.in_proj(h).chunk(2, dim=-1)  # (b, d_inner)
        window = torch.cat([conv_state.to(x.dtype), x[:, :, None]], dim=-1)  # (b, d_inner, d_conv)
        x = (window * self.conv1d.weight[:, 0, :].to(x.dtype)).sum(-1)
        if self.conv1d.bias is not None:
            x = x + self.conv1d.bias.to(x.dtype)
        x = F.silu(x)
        dt, B, C = self._ssm_inputs(x)
        A = -torch.exp(self.A_log.float())
        y = kernels.selective_state_update(ssm_state, x, dt, A, B, C, self.D.float(), z=z,
                                           dt_bias=self.dt_proj.bias.float(), dt_softplus=True,
                                           backend=self.scan_backend)
        return self.out_proj(y), window[:, :, 1:].float()


class Block(nn.Module):
    """Pre-norm residual block: residual += previous mixer output; mixer(norm(residual))."""

    def __init__(self, cfg: MambaConfig):
        super().__init__()
        norm = RMSNorm if cfg.rms_norm else nn.LayerNorm
        self.norm = norm(cfg.d_model, eps=cfg.norm_epsilon)
        self.mixer = MambaMixer(cfg)
        self.residual_in_fp32 = cfg.residual_in_fp32

    def add_norm(self, hidden, residual):
        residual = hidden if residual is None else residual + hidden
        if self.residual_in_fp32:
            residual = residual.float()
        return self.norm(residual.to(self.norm.weight.dtype)), residual


class MambaLM(nn.Module):
    """mamba_ssm's MambaLMHeadModel (Mamba-1 blocks). Logits cover the padded vocabulary."""

    FUSED_CPU_STEP = True  # kernels/decode_cpu.py computes exactly this class's step() (not a subclass's)

    def __init__(self, config: MambaConfig | dict):
        super().__init__()
        cfg = config if isinstance(config, MambaConfig) else MambaConfig.from_dict(config)
        self.config = cfg
        self.backbone = nn.Module()
        self.backbone.embedding = Embedding(cfg.padded_vocab_size, cfg.d_model)
        self.backbone.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        norm = RMSNorm if cfg.rms_norm else nn.LayerNorm
        self.backbone.norm_f = norm(cfg.d_model, eps=cfg.norm_epsilon)
        self.lm_head = Linear(cfg.d_model, cfg.padded_vocab_size, bias=False)
        if not self.lm_head.weight.is_meta:
            self._init_weights()
        self.tie_weights()

    def tie_weights(self):
        if self.config.tie_embeddings:
            self.lm_head.weight = self.backbone.embedding.weight

    @torch.no_grad()
    def _init_weights(self):
        """mamba_ssm's _init_weights: zero Linear biases (except dt_proj's), N(0, 0.02) embedding,
        out_proj scaled by 1/sqrt(n_layer) after a kaiming-uniform draw."""
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear) and module.bias is not None:
                if not getattr(module.bias, "_no_reinit", False):
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)
            if name.endswith("mixer.out_proj"):
                nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5))
                module.weight /= math.sqrt(self.config.n_layer)

    @property
    def scan_backend(self) -> str:
        return self.backbone.layers[0].mixer.scan_backend if len(self.backbone.layers) else "auto"

    @scan_backend.setter
    def scan_backend(self, value: str):
        for layer in self.backbone.layers:
            layer.mixer.scan_backend = value

    def init_state(self, batch: int, device=None) -> MambaState:
        cfg = self.config
        device = device if device is not None else self.lm_head.weight.device
        conv = [torch.zeros(batch, cfg.d_inner, cfg.d_conv - 1, device=device) for _ in range(cfg.n_layer)]
        ssm = [torch.zeros(batch, cfg.d_inner, cfg.d_state, device=device) for _ in range(cfg.n_layer)]
        return MambaState(conv, ssm)

    def forward(self, input_ids: torch.Tensor, state: MambaState | None = None):
        """input_ids (b, L) -> (logits (b, L, padded_vocab) float32, state after the last token)."""
        if input_ids.shape[1] == 0:
            b = input_ids.shape[0]
            empty = torch.zeros(b, 0, self.config.padded_vocab_size, device=input_ids.device)
            return empty, (state if state is not None else self.init_state(b, input_ids.device))
        hidden, residual = self.backbone.embedding(input_ids), None
        conv, ssm = [], []
        for i, layer in enumerate(self.backbone.layers):
            x, residual = layer.add_norm(hidden, residual)
            hidden, c, s = layer.mixer(x, None if state is None else state.conv[i],
                                       None if state is None else state.ssm[i])
            conv.append(c)
            ssm.append(s)
        logits = self._head(hidden, residual)
        return logits, MambaState(conv, ssm)

    def step(self, input_ids: torch.Tensor, state: MambaState):
        """input_ids (b,) -> (logits (b, padded_vocab) float32, state); state.ssm is updated in place."""
        hidden, residual = self.backbone.embedding(input_ids), None
        for i, layer in enumerate(self.backbone.layers):
            x, residual = layer.add_norm(hidden, residual)
            hidden, state.conv[i] = layer.mixer.step(x, state.conv[i], state.ssm[i])
        return self._head(hidden, residual), state

    def _head(self, hidden, residual):
        residual = hidden if residual is None else residual + hidden
        if self.config.residual_in_fp32:
            residual = residual.float()
        x = self.backbone.norm_f(residual.to(self.backbone.norm_f.weight.dtype))
        return self.lm_head(x).float()

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def make_decoder(self, vocab_size: int, device, fused: bool = True):
        """Its decoder for generation: the recurrent state (generate_decoders.MambaDecoder); fused=False keeps
        single steps on step() (the reference) instead of the compiled CPU step (kernels/decode_cpu.py)."""
        from robustbench_bytes.generation.decoders import MambaDecoder

        return MambaDecoder(self, vocab_size, device, fused)
