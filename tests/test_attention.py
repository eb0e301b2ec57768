"""The fast processor computes exactly paper Eq. 2 (and Eq. 5), and the AU vector reaches the right layers."""

from contextlib import contextmanager

import numpy as np
import pytest
import torch
from diffusers.models.attention_processor import Attention

from fineface_ui.bench.reference import ReferenceAUAttnProcessor, install_reference
from fineface_ui.engine.attention import FineFaceAttnProcessor
from fineface_ui.engine.au_encoder import AUEncoder


@pytest.fixture
def layer():
    torch.manual_seed(0)
    attn = Attention(query_dim=64, cross_attention_dim=96, heads=4, dim_head=16)
    processor = FineFaceAttnProcessor(64, 96)
    for module in (processor.au_to_k, processor.au_to_v):
        torch.nn.init.normal_(module.weight, std=0.1)
    return attn, processor


def outputs(attn, processors, hidden, text):
    """The layer's output under each processor, on the same weights and inputs."""
    results = []
    for processor in processors:
        attn.set_processor(processor)
        results.append(attn(hidden, encoder_hidden_states=text))
    return results


@pytest.mark.parametrize("au_scale", [0.0, 0.7, 2.5])
def test_fineface_layer_equals_the_literal_eq2_on_the_same_weights(layer, au_scale):
    attn, processor = layer
    hidden, text = torch.randn(2, 50, 64), torch.randn(2, 77, 96)
    au_tokens = torch.randn(2, 1, 96)  # a different token per batch entry, as with guidance
    reference = ReferenceAUAttnProcessor(processor)
    for proc in (processor, reference):
        proc.begin_request(au_tokens, au_scale=au_scale)
    ours, literal = outputs(attn, (processor, reference), hidden, text)
    torch.testing.assert_close(ours, literal, rtol=1e-5, atol=1e-5)
    # The AU term is large enough here that a mistake in it could not hide inside the tolerance.
    processor.begin_request(au_tokens, au_scale=au_scale + 0.01)
    assert (outputs(attn, (processor,), hidden, text)[0] - literal).abs().max() > 1e-3


def test_au_to_k_has_no_effect_because_the_au_branch_has_one_token(layer):
    attn, processor = layer
    hidden, text, au_tokens = torch.randn(1, 10, 64), torch.randn(1, 77, 96), torch.randn(1, 1, 96)
    reference = ReferenceAUAttnProcessor(processor)
    for proc in (processor, reference):
        proc.begin_request(au_tokens, 1.0)
    before = outputs(attn, (reference,), hidden, text)[0]
    torch.nn.init.normal_(processor.au_to_k.weight, std=5.0)  # shared: the literal formula uses the new one
    ours, literal = outputs(attn, (processor, reference), hidden, text)
    torch.testing.assert_close(literal, before)
    torch.testing.assert_close(ours, literal, rtol=1e-5, atol=1e-5)


def test_identity_branch_adds_scaled_attention_over_identity_tokens():
    torch.manual_seed(1)
    attn = Attention(query_dim=64, cross_attention_dim=48, heads=4, dim_head=16)
    processor = FineFaceAttnProcessor(64, 48, identity_dim=48)
    hidden, text = torch.randn(1, 20, 64), torch.randn(1, 77, 48)
    au_tokens, identity = torch.randn(1, 1, 48), torch.randn(1, 32, 48)
    attn.set_processor(processor)
    processor.begin_request(au_tokens, 1.0, identity, ip_scale=0.0)
    without = attn(hidden, encoder_hidden_states=text)
    processor.begin_request(au_tokens, 1.0, identity, ip_scale=0.5)
    with_identity = attn(hidden, encoder_hidden_states=text)
    # Eq. 5 by hand: the identity term, through to_out's linear part.
    query = attn.head_to_batch_dim(attn.to_q(hidden))
    key = attn.head_to_batch_dim(processor.to_k_ip(identity))
    value = attn.head_to_batch_dim(processor.to_v_ip(identity))
    term = attn.batch_to_head_dim(torch.bmm(attn.get_attention_scores(query, key), value))
    torch.testing.assert_close(with_identity - without, 0.5 * term @ attn.to_out[0].weight.T, rtol=1e-4, atol=1e-5)


def test_processor_refuses_to_run_without_a_request(layer):
    attn, processor = layer
    attn.set_processor(processor)
    with pytest.raises(RuntimeError, match="begin_request"):
        attn(torch.randn(1, 4, 64), encoder_hidden_states=torch.randn(1, 77, 96))


def test_au_encoder_token_is_values_then_linear_then_zeros_and_stays_fp16():
    encoder = AUEncoder(hidden_dim=64, token_dim=1024)
    values = torch.tensor([[0, 0, 0, 0, 2.5, 0, 5, 0, 0, 0, 0, 0]])
    token = encoder(values)
    assert token.shape == (1, 1, 1024)
    torch.testing.assert_close(token[0, 0, :12], values[0])
    torch.testing.assert_close(token[0, 0, 12:76], encoder.au_encoder(values)[0])
    assert not token[0, 0, 76:].any()
    assert encoder.half()(values.half()).dtype == torch.float16


def test_au_vector_reaches_every_cross_attention_layer_and_no_self_attention_layer(sd21_pipe, fast, attention_spy):
    seen = {}

    def record(name, processor):
        seen[name] = processor._au_term.clone() if hasattr(processor, "_au_term") else None

    with attention_spy(sd21_pipe.sd.unet, record) as originals:
        sd21_pipe("a face", {"AU12": 4}, seed=1, **{**fast, "num_inference_steps": 1})
    cross = {name for name in originals if name.endswith("attn2.processor")}
    assert cross == set(sd21_pipe.adapters)
    assert {name for name, term in seen.items() if term is not None} == cross
    tokens = sd21_pipe.au_encoder(torch.tensor([[0.0] * 12, [0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0]]))
    for name in cross:
        # Unconditional half from the all-zero AU vector (not a zero token: the encoder has a bias).
        torch.testing.assert_close(seen[name], sd21_pipe.adapters[name].au_to_v(tokens))
        assert not torch.equal(seen[name][0], seen[name][1])


@contextmanager
def literal_eq2(pipe):
    """The pipeline with the reference processors in every cross-attention layer and bmm self-attention."""
    unet = pipe.sd.unet
    originals, adapters = dict(unet.attn_processors), pipe.adapters
    pipe.adapters = install_reference(unet, adapters)
    try:
        yield
    finally:
        unet.set_attn_processor(dict(originals))  # diffusers empties the dict it is given
        pipe.adapters = adapters


def noise_prediction(pipe, au_tokens, au_scale):
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(2, 4, 32, 32, generator=generator)
    text = torch.randn(2, 77, pipe.sd.unet.config.cross_attention_dim, generator=generator)
    for adapter in pipe.adapters.values():
        adapter.begin_request(au_tokens, au_scale)
    try:
        with torch.no_grad():
            return pipe.sd.unet(latents, torch.tensor(400), encoder_hidden_states=text).sample
    finally:
        for adapter in pipe.adapters.values():
            adapter.end_request()


def test_fineface_unet_equals_the_literal_eq2_unet_on_the_same_weights(sd21_pipe):
    au_tokens = sd21_pipe.au_encoder(torch.tensor([[0.0] * 12, [2, 0, -3, 0, 0, 0, 4, 0, 0, 0, 0, 7]]))
    ours = noise_prediction(sd21_pipe, au_tokens, 1.3)
    with literal_eq2(sd21_pipe):
        literal = noise_prediction(sd21_pipe, au_tokens, 1.3)
    torch.testing.assert_close(ours, literal, rtol=1e-4, atol=1e-5)


def test_fast_pipeline_matches_the_literal_eq2_end_to_end(sd21_pipe, fast, pixels):
    request = {"prompt": "a face", "aus": {"AU12": 3, "AU4": -2}, "seed": 3, "au_scale": 1.3, **fast}
    image_fast = pixels(sd21_pipe(**request).images[0])
    with literal_eq2(sd21_pipe):
        image_literal = pixels(sd21_pipe(**request).images[0])
    assert np.abs(image_fast - image_literal).max() <= 2  # 8-bit rounding of fp32 results that agree to ~1e-5
