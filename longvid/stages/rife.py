"""RIFE 4.0 in PyTorch: the IFNet of Practical-RIFE 4.0, written for longvid, loading the published weights.

IFNet estimates the flow from the middle frame to both inputs coarse to fine: four blocks at 1/8, 1/4, 1/2 and
full scale each refine the previous flow and a fusion mask from the inputs warped so far. The timestep is an input
channel, so any t in (0, 1) works, and several timesteps of one pair run as one batch. This is the "fast" path
(no context/refinement network), the one RIFE itself uses at inference.

Parameter names follow the checkpoint (``block0.conv0.0.0.weight`` ...); it is loaded with
``torch.load(..., weights_only=True)``, so it is read as tensors, never unpickled as code.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

PAD = 64  # the coarsest level sees 1/8 scale, then two stride-2 convolutions; doubled scales need 64


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=True), nn.PReLU(c_out))


class FlowBlock(nn.Module):
    """One level: from (images, timestep, mask, flow so far) at 1/scale, a flow update and a mask update."""

    def __init__(self, c_in: int, width: int):
        super().__init__()
        self.conv0 = nn.Sequential(_conv(c_in, width // 2, 2), _conv(width // 2, width, 2))
        self.convblock = nn.Sequential(*[_conv(width, width) for _ in range(8)])
        self.lastconv = nn.ConvTranspose2d(width, 5, 4, 2, 1)

    def forward(self, x: torch.Tensor, flow: torch.Tensor | None, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.interpolate(x, scale_factor=1 / scale, mode="bilinear", align_corners=False)
        if flow is not None:
            flow = F.interpolate(flow, scale_factor=1 / scale, mode="bilinear", align_corners=False) / scale
            x = torch.cat((x, flow), 1)
        features = self.conv0(x)
        features = self.convblock(features) + features
        out = F.interpolate(self.lastconv(features), scale_factor=scale * 2, mode="bilinear", align_corners=False)
        return out[:, :4] * scale * 2, out[:, 4:5]


def backward_warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample `image` at each pixel displaced by `flow` (in pixels)."""
    _, _, height, width = image.shape
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, height, device=image.device),
                            torch.linspace(-1, 1, width, device=image.device), indexing="ij")
    grid = torch.stack((xs, ys)).unsqueeze(0).to(image.dtype)
    scale = torch.tensor([(width - 1) / 2, (height - 1) / 2], device=image.device, dtype=image.dtype).view(1, 2, 1, 1)
    grid = (grid + flow / scale).permute(0, 2, 3, 1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)


class IFNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.block0 = FlowBlock(7, 192)  # img0, img1, timestep
        self.block1 = FlowBlock(8 + 4, 128)  # warped img0, warped img1, timestep, mask, + flow
        self.block2 = FlowBlock(8 + 4, 96)
        self.block3 = FlowBlock(8 + 4, 64)

    def forward(self, img0: torch.Tensor, img1: torch.Tensor, timestep: torch.Tensor,
                scales: Sequence[float] = (8, 4, 2, 1)) -> torch.Tensor:
        t = timestep.view(-1, 1, 1, 1).expand(-1, 1, *img0.shape[2:])
        flow = mask = None
        warped0, warped1 = img0, img1
        for level, block in enumerate((self.block0, self.block1, self.block2, self.block3)):
            if flow is None:
                flow, mask = block(torch.cat((img0, img1, t), 1), None, scales[level])
            else:
                d_flow, d_mask = block(torch.cat((warped0, warped1, t, mask), 1), flow, scales[level])
                if level == 1 and scales[0] == 8 and d_flow[:, :2].abs().max() > 32 and d_flow[:, 2:].abs().max() > 32:
                    # Very large motion: start again looking at a coarser scale, as RIFE does.
                    return self.forward(img0, img1, timestep, tuple(s * 2 for s in scales))
                flow, mask = flow + d_flow, mask + d_mask
            warped0 = backward_warp(img0, flow[:, :2])
            warped1 = backward_warp(img1, flow[:, 2:4])
        weight = torch.sigmoid(mask)
        return warped0 * weight + warped1 * (1 - weight)


def load_ifnet(path: str | Path, device: str = "cpu") -> IFNet:
    """IFNet with the RIFE 4.0 weights from `path` (``flownet.pkl``)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    # The checkpoint also holds a training-only teacher block and the context/refinement nets of the slow path.
    state = {k: v for k, v in state.items() if k.split(".")[0] in ("block0", "block1", "block2", "block3")}
    net = IFNet()
    net.load_state_dict(state, strict=True)
    return net.eval().to(device)


class RifeInterpolator:
    """Frames in, frames out: ``rife(a, b, [t1, t2, ...])`` for H x W x 3 uint8 RGB frames.

    Args:
        weights: the ``flownet.pkl`` file.
        ensemble: also interpolate the reversed pair at 1 - t and average (temporal test-time augmentation, as
            rife-ncnn-vulkan's temporal TTA mode): about +0.4 dB on our clips for twice the compute.
        device: ``cuda`` or ``cpu`` (default: cuda when available).
    """

    def __init__(self, weights: str | Path, *, ensemble: bool = True, device: str | None = None):
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.ensemble = ensemble
        self.net = load_ifnet(weights, self.device)

    @torch.inference_mode()
    def __call__(self, a: np.ndarray, b: np.ndarray, timesteps: Sequence[float]) -> list[np.ndarray]:
        height, width = a.shape[:2]
        pad = (0, -width % PAD, 0, -height % PAD)

        def tensor(frame: np.ndarray) -> torch.Tensor:
            # RIFE was trained on frames read by OpenCV: BGR, in [0, 1].
            x = torch.from_numpy(frame[..., ::-1].copy()).to(self.device)
            return F.pad(x.permute(2, 0, 1).unsqueeze(0).float() / 255, pad)

        n = len(timesteps)
        first, second = tensor(a), tensor(b)
        steps = list(timesteps)
        img0, img1 = first.expand(n, -1, -1, -1), second.expand(n, -1, -1, -1)
        if self.ensemble:  # one batch: the pair both ways
            img0, img1 = torch.cat((img0, second.expand(n, -1, -1, -1))), torch.cat((img1, first.expand(n, -1, -1, -1)))
            steps += [1 - t for t in timesteps]
        out = self.net(img0, img1, torch.tensor(steps, dtype=torch.float32, device=self.device))
        if self.ensemble:
            out = (out[:n] + out[n:]) / 2
        out = out[:, :, :height, :width]
        out = (out.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        return [np.ascontiguousarray(frame[..., ::-1]) for frame in out]
