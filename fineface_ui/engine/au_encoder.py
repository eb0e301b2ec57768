"""The AU encoder: twelve AU intensities -> one conditioning token for the AU adapter."""

from __future__ import annotations

import torch
from torch import nn

from ..aus import NUM_AUS


class AUEncoder(nn.Module):
    """Token = concat(y, linear(y), zero padding), shaped (batch, 1, token_dim).

    SD 2.1: Linear(12, 64), token 1024 (948 zeros). SD 1.5: Linear(12, 756), token 768 (no padding).
    """

    def __init__(self, hidden_dim: int, token_dim: int) -> None:
        super().__init__()
        if NUM_AUS + hidden_dim > token_dim:
            raise ValueError(f"AU token of {token_dim} dims cannot hold {NUM_AUS} + {hidden_dim} features")
        # The attribute name is the released checkpoint's key prefix ("au_encoder.weight").
        self.au_encoder = nn.Linear(NUM_AUS, hidden_dim)
        self.token_dim = token_dim

    def forward(self, au_values: torch.Tensor) -> torch.Tensor:
        au_values = au_values.to(self.au_encoder.weight.dtype)
        features = [au_values, self.au_encoder(au_values)]
        padding = self.token_dim - NUM_AUS - self.au_encoder.out_features
        if padding:
            # Same dtype and device as the input, so the token is valid in fp16 on the GPU too.
            features.append(au_values.new_zeros(au_values.shape[0], padding))
        return torch.cat(features, dim=1).unsqueeze(1)
