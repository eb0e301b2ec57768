"""Restoring stored settings into the page's components."""

import gradio as gr

from fineface_ui.ui import fit_to_sliders, settings_values


def face_image_metadata():
    return {"prompt": "a portrait", "aus": [{"AU12": 3}], "seed": 9, "num_inference_steps": 25,
            "guidance_scale": 7.5, "au_scale": 1.0, "negative_prompt": "", "height": 512, "width": 512,
            "scheduler": "dpm++", "ip_scale": 0.8, "lora_scale": None, "pipeline": "sd15-identity", "faces": 1}


def test_restoring_a_face_image_keeps_the_lora_slider_which_that_model_does_not_use():
    components = {"lora_scale": gr.Slider(0, 1, value=0.25), "ip_scale": gr.Slider(0, 2), "seed": gr.Number(),
                  "AU12": gr.Slider(-5, 10)}
    restored = fit_to_sliders(settings_values(face_image_metadata()), components)
    assert restored[0] == gr.skip()
    assert restored[1:] == [0.8, 9, 3.0]
