"""`python -m fineface_ui generate` writes a PNG whose settings reproduce it."""

import numpy as np
from PIL import Image

from fineface_ui.cli import main
from fineface_ui.png_info import read_settings


def run(sd21_files, *args):
    return main(["generate", "--base-model", str(sd21_files["base_model"]),
                 "--fineface-weights", str(sd21_files["fineface_weights"]), "--device", "cpu",
                 "--steps", "2", "--height", "256", "--width", "256", *args])


def test_generate_embeds_settings_and_from_png_reproduces_the_pixels(sd21_files, tmp_path):
    first = tmp_path / "face.png"
    assert run(sd21_files, "--prompt", "a close-up of a woman", "--au", "AU12=3", "--au", "AU6=2",
               "--seed", "7", "--out", str(first)) == 0
    settings = read_settings(first)
    assert settings["aus"][0]["AU12"] == 3 and settings["aus"][0]["AU6"] == 2 and settings["seed"] == 7
    parameters = Image.open(first).info["parameters"]
    assert parameters.startswith("a close-up of a woman\nSteps: 2, Sampler: DPM++ 2M, CFG scale: 7.5, Seed: 7")
    assert 'AUs: "AU6=2, AU12=3"' in parameters

    again = tmp_path / "again.png"
    assert run(sd21_files, "--from", str(first), "--out", str(again)) == 0
    assert np.array_equal(np.asarray(Image.open(first)), np.asarray(Image.open(again)))

    changed = tmp_path / "changed.png"
    assert run(sd21_files, "--from", str(first), "--au", "AU12=-3", "--out", str(changed)) == 0
    assert read_settings(changed)["prompt"] == "a close-up of a woman"
    assert read_settings(changed)["aus"][0]["AU12"] == -3 and read_settings(changed)["aus"][0]["AU6"] == 0


def test_bad_input_is_a_message_and_exit_code_not_a_traceback(sd21_files, tmp_path, capsys):
    assert run(sd21_files, "--prompt", "x", "--au", "AU3=1", "--out", str(tmp_path / "x.png")) == 2
    assert "Unknown Action Unit 'AU3'" in capsys.readouterr().err


def test_a_png_without_settings_is_refused_clearly(sd21_files, tmp_path, capsys):
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    assert run(sd21_files, "--from", str(plain), "--out", str(tmp_path / "x.png")) == 2
    assert "has no FineFace settings" in capsys.readouterr().err


def test_from_an_identity_png_without_the_photo_is_refused(sd21_files, tmp_path, capsys):
    from fineface_ui.png_info import save_png

    made_with_face = tmp_path / "face.png"
    save_png(Image.new("RGB", (8, 8)), made_with_face, {
        "prompt": "p", "aus": [{}], "seed": 1, "num_inference_steps": 2, "guidance_scale": 7.5, "au_scale": 1.0,
        "negative_prompt": "", "height": 256, "width": 256, "scheduler": "dpm++", "ip_scale": 1.0,
        "lora_scale": None, "pipeline": "sd15-identity", "faces": 1})
    assert run(sd21_files, "--from", str(made_with_face), "--out", str(tmp_path / "x.png")) == 2
    assert "pass them again with --face" in capsys.readouterr().err
