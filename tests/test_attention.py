"""The fast processor computes exactly paper Eq. 2 (and Eq. 5), and the AU vector reaches the right layers."""

import pytest
import torch
from diffusers.models.attention_processor import Attention

from fineface_ui.attention import FineFaceAttnProcessor
from fineface_ui.au_encoder import AUEncoder
from fineface_ui.bench.reference import ReferenceAUAttnProcessor

from .conftest import FAST


@pytest.fixture
def layer():
    torch.manual_seed(0)
    attn = Attention(query_dim=64, cross_attention_dim=96, heads=4, dim_head=16)
    processor = FineFaceAttnProcessor(64, 96)
    for module in (processor.au_to_k, processor.au_to_v):
        torch.nn.init.normal_(module.weight, std=0.1)
    return attn, processor


def test_precomputed_au_term_equals_the_full_attention_formula(layer):
    attn, processor = layer
    hidden, text = torch.randn(2, 50, 64), torch.randn(2, 77, 96)
    au_tokens = torch.randn(2, 1, 96)
    reference = ReferenceAUAttnProcessor(processor)
    for proc in (processor, reference):
        proc.begin_request(au_tokens, au_scale=0.7)
    attn.set_processor(reference)
    expected = attn(hidden, encoder_hidden_states=text)
    attn.set_processor(processor)
    actual = attn(hidden, encoder_hidden_states=text)
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


def test_au_to_k_has_no_effect_because_the_au_branch_has_one_token(layer):
    attn, processor = layer
    hidden, text, au_tokens = torch.randn(1, 10, 64), torch.randn(1, 77, 96), torch.randn(1, 1, 96)
    reference = ReferenceAUAttnProcessor(processor)
    reference.begin_request(au_tokens, 1.0)
    attn.set_processor(reference)
    before = attn(hidden, encoder_hidden_states=text)
    torch.nn.init.normal_(processor.au_to_k.weight, std=5.0)
    torch.testing.assert_close(attn(hidden, encoder_hidden_states=text), before)


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


def test_au_vector_reaches_every_cross_attention_layer_and_no_self_attention_layer(sd21_pipe):
    seen = {}

    def spy(name, original):
        def call(attn, hidden_states, encoder_hidden_states=None, **kwargs):
            seen[name] = original._au_term.clone() if hasattr(original, "_au_term") else None
            return original(attn, hidden_states, encoder_hidden_states, **kwargs)
        return call

    unet = sd21_pipe.sd.unet
    originals = dict(unet.attn_processors)
    unet.set_attn_processor({name: spy(name, proc) for name, proc in originals.items()})
    try:
        sd21_pipe("a face", {"AU12": 4}, seed=1, **{**FAST, "num_inference_steps": 1})
    finally:
        unet.set_attn_processor(dict(originals))  # diffusers empties the dict it is given
    cross = {name for name in originals if name.endswith("attn2.processor")}
    assert cross == set(sd21_pipe.adapters)
    assert {name for name, term in seen.items() if term is not None} == cross
    tokens = sd21_pipe.au_encoder(torch.tensor([[0.0] * 12, [0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0]]))
    for name in cross:
        # Unconditional half from the all-zero AU vector (not a zero token: the encoder has a bias).
        torch.testing.assert_close(seen[name], sd21_pipe.adapters[name].au_to_v(tokens))
        assert not torch.equal(seen[name][0], seen[name][1])


def test_fast_pipeline_matches_the_literal_eq2_end_to_end(sd21_pipe):
    from fineface_ui.bench.reference import install_reference

    image_fast = sd21_pipe("a face", {"AU12": 3, "AU4": -2}, seed=3, **FAST).images[0]
    unet = sd21_pipe.sd.unet
    originals, adapters = dict(unet.attn_processors), sd21_pipe.adapters
    sd21_pipe.adapters = install_reference(unet, adapters)
    try:
        image_ref = sd21_pipe("a face", {"AU12": 3, "AU4": -2}, seed=3, **FAST).images[0]
    finally:
        unet.set_attn_processor(dict(originals))  # diffusers empties the dict it is given
        sd21_pipe.adapters = adapters
    difference = torch.tensor(list(image_fast.getdata())) - torch.tensor(list(image_ref.getdata()))
    assert difference.abs().max() <= 2  # 8-bit rounding of fp32 results that agree to ~1e-5
