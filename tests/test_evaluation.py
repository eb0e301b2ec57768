"""`fineface-ui eval`: the paper's protocol, its AU MSE and CLIP-I, the report, resuming, and the work shared
between the processes of `accelerate launch`."""

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fineface_ui.aus import AU_NAMES
from fineface_ui.cli import main
from fineface_ui.evaluation.evaluate import batches
from fineface_ui.evaluation.protocol import COMBINATION, PROMPTS, SINGLE, combinations, paper_cases
from fineface_ui.evaluation.scoring import group_summary, squared_error, summarize
from fineface_ui.png_info import read_settings

from .app_fixtures import face_picture

QUICK = ["--random-weights", "--steps", "2", "--batch-size", "4"]


def test_the_protocol_has_the_papers_1650_images_with_its_figure_prompts():
    cases = paper_cases()
    assert len(cases) == 15 * 12 * 5 + 15 * 50 == 1650
    assert len({case.case_id for case in cases}) == 1650
    assert {"A close-up of Barack Obama", "An Asian woman in the park"} <= set(PROMPTS) and len(set(PROMPTS)) == 15
    seeds = {index: {case.seed for case in cases if case.prompt_index == index} for index in range(15)}
    assert all(len(seeds[index]) == 1 for index in seeds) and len(set.union(*seeds.values())) == 15
    singles = [case for case in cases if case.group == SINGLE and case.prompt_index == 3]
    assert sorted((name, value) for case in singles for name, value in case.aus.items() if value) == sorted(
        (name, float(level)) for name in AU_NAMES for level in range(1, 6))


def test_the_50_combinations_are_fixed_distinct_sets_of_2_to_5_aus_at_1_to_5():
    sets = combinations()
    assert len(sets) == 50
    active = [tuple((name, value) for name, value in aus.items() if value) for aus in sets]
    assert len(set(active)) == 50
    assert all(2 <= len(pairs) <= 5 and all(value in (1, 2, 3, 4, 5) for _, value in pairs) for pairs in active)
    assert active[0] == (("AU5", 5), ("AU6", 2), ("AU25", 1))  # the file, not a fresh draw, decides


def asked(cases, group=SINGLE):
    return {(name, value) for case in cases if case.group == group for name, value in case.aus.items() if value}


def test_a_quick_run_covers_every_prompt_au_and_intensity_it_can():
    quick = paper_cases(24)
    assert len(quick) == 24 and len({case.case_id for case in quick}) == 24 and quick == paper_cases(24)
    assert {case.prompt_index for case in quick} == set(range(15))
    assert {name for name, _ in asked(quick)} == set(AU_NAMES)
    assert {value for _, value in asked(quick)} == {1, 2, 3, 4, 5}
    assert any(case.group == COMBINATION for case in quick)
    assert quick == sorted(quick, key=paper_cases().index)  # in protocol order: a prompt's cases together
    every_combination = {case.case_id.rpartition("-")[2] for case in paper_cases(120) if case.group == COMBINATION}
    assert len(every_combination) == 50
    assert len(asked(paper_cases(120))) == 48 and len(asked(paper_cases(330))) == 60


def test_batches_hold_one_prompt_each_and_do_not_depend_on_the_process_count():
    cases = paper_cases(40)
    groups = batches(cases, 3)
    assert [case for group in groups for case in group] == cases
    assert all(len({case.prompt_index for case in group}) == 1 and len(group) <= 3 for group in groups)


def test_processes_get_even_shares_of_images_even_when_batches_differ_in_size():
    from fineface_ui.evaluation.sharing import share_of

    groups = batches(paper_cases(24), 8)  # one or two images each: the cases of one prompt
    shares = [share_of(groups, rank, 2, len) for rank in range(2)]
    assert sorted(map(id, shares[0] + shares[1])) == sorted(map(id, groups))  # each batch once
    assert abs(sum(map(len, shares[0])) - sum(map(len, shares[1]))) <= 2
    assert [share_of(list("abcde"), rank, 2, lambda item: 1) for rank in range(2)] == [list("ace"), list("bd")]


def test_au_mse_is_the_mean_over_images_of_the_squared_distance_over_the_twelve_aus():
    asked = dict.fromkeys(AU_NAMES, 0.0) | {"AU12": 4.0}
    read = dict.fromkeys(AU_NAMES, 0.0) | {"AU12": 3.0, "AU6": 2.0}
    assert squared_error(asked, read) == 1.0 + 4.0
    neutral = dict.fromkeys(AU_NAMES, 0.0)
    rows = [{"group": SINGLE, "requested": dict.fromkeys(AU_NAMES, 0.0) | {"AU1": float(level)}, "measured": neutral,
             "squared_error": squared_error(dict.fromkeys(AU_NAMES, 0.0) | {"AU1": float(level)}, neutral),
             "clip_i": 0.5} for level in range(1, 6)]
    rows.append({"group": SINGLE, "requested": asked, "measured": None, "squared_error": None, "clip_i": 1.0})
    summary = group_summary(rows)
    # A face that does not move scores (1 + 4 + 9 + 16 + 25) / 5 = 11; the image without a face is only counted.
    assert summary["au_mse"] == 11.0 and summary["no_face"] == 1 and summary["images"] == 6
    assert summary["au_mse_per_au"] == pytest.approx(11 / 12)
    assert summary["au_distance"] == pytest.approx(sum(range(1, 6)) / 5)
    assert summary["clip_i"] == pytest.approx((5 * 0.5 + 1.0) / 6)
    assert summarize(rows)["calibration"]["AU1"] == {str(level): 0.0 for level in range(1, 6)}


def read_rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]


# One thread per process in every run compared: a thread count changes the order floats are summed in.
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def one_process_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "report"
    command = [sys.executable, "-m", "fineface_ui", "eval", *QUICK, "--limit", "6", "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, env=ONE_THREAD, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_eval_writes_a_report_beside_the_papers_numbers_with_every_image_measured(one_process_run):
    out = one_process_run
    rows = read_rows(out)
    assert [row["case"] for row in rows] == [case.case_id for case in paper_cases(6)]
    for row in rows:
        assert row["measured"] is not None and set(row["measured"]) == set(AU_NAMES)
        assert row["squared_error"] == pytest.approx(squared_error(row["requested"], row["measured"]), abs=1e-4)
        assert -1 <= row["clip_i"] <= 1
        stored = read_settings(out / row["image"])  # every image carries its settings
        assert stored["aus"][0] == row["requested"] and stored["seed"] == row["seed"] == row["prompt_index"]
    report = (out / "REPORT.md").read_text()
    assert "| FineFace, the paper (1,650 images) | 4.71 | 0.92 | 7.54 | 0.83 |" in report
    assert "these numbers only show that the evaluation runs" in report.lower()
    summary = json.loads((out / "summary.json").read_text())
    ours = summary["summary"]["groups"][SINGLE]["au_mse"]
    assert f"| This run | {ours:.2f} |" in report
    assert len(summary["au_reader"]["sha256"]) == 64 and summary["options"]["limit"] == 6
    assert (out / "calibration.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "clip_i_histogram.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    neutral = [json.loads(line) for line in (out / "neutral.jsonl").read_text().splitlines()]
    assert {row["prompt_index"] for row in neutral} == {row["prompt_index"] for row in rows}
    assert all(row["clip_i"] == 1.0 for row in neutral)


@pytest.fixture
def one_thread():
    """This process computes as the one-thread runs did (torch's threads; ONNX Runtime's are per session)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_resumed_run_makes_only_what_is_missing(one_process_run, tmp_path, capsys, one_thread):
    out = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(one_process_run), str(out)], check=True)
    before = read_rows(out)
    (out / "results.jsonl").write_text("".join(json.dumps(row) + "\n" for row in before[:4]))
    for row in [before[0], *before[4:]]:  # two rows lost, and an image whose row was kept
        (out / row["image"]).unlink()
    kept = before[1:4]
    stamps = {row["case"]: (out / row["image"]).stat().st_mtime_ns for row in kept}
    capsys.readouterr()
    assert main(["eval", *QUICK, "--limit", "6", "--out", str(out)]) == 0
    assert read_rows(out) == before
    assert {row["case"]: (out / row["image"]).stat().st_mtime_ns for row in kept} == stamps
    assert re.search(r"results \(process 1 of 1\): 100%\|[^|]*\| 3/3", capsys.readouterr().err)


def test_resuming_with_other_options_is_refused_naming_them(one_process_run, tmp_path, capsys):
    out = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(one_process_run), str(out)], check=True)
    assert main(["eval", *QUICK[:-2], "--batch-size", "4", "--steps", "3", "--limit", "6", "--out", str(out)]) == 2
    assert "copy holds an evaluation with other options or models (num_inference_steps)" in capsys.readouterr().err
    # Smaller batches (after running out of GPU memory, say) make the same images: that resumes.
    assert main(["eval", *QUICK[:-2], "--batch-size", "2", "--limit", "6", "--out", str(out)]) == 0


def test_a_missing_face_photo_or_a_folder_that_is_no_report_is_said_before_any_work(tmp_path, capsys):
    assert main(["eval", *QUICK, "--variant", "sd15-identity", "--face", str(tmp_path / "me.jpg"),
                 "--out", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err == "error: The face photo me.jpg does not exist.\n"
    assert main(["eval", *QUICK, "--out", str(tmp_path / "y"), "--compare", str(tmp_path)]) == 2
    assert f"{tmp_path.name} is not a finished evaluation: it has no readable summary.json" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_compare_prints_the_differences_between_two_reports(one_process_run, tmp_path, capsys):
    other = tmp_path / "other"
    subprocess.run(["cp", "-r", str(one_process_run), str(other)], check=True)
    summary = json.loads((other / "summary.json").read_text())
    summary["summary"]["groups"][SINGLE]["au_mse"] += 1.5
    summary["clip"]["revision"] = "abc"
    (other / "summary.json").write_text(json.dumps(summary))
    assert main(["eval", *QUICK, "--limit", "6", "--out", str(one_process_run), "--compare", str(other)]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"Individual AUs au_mse\s+\S+\s+\S+\s+-1\.500", printed)
    assert 'clip revision: this "local", other "abc"' in printed


def test_the_sd15_identity_variant_needs_a_face_photo(tmp_path, capsys):
    assert main(["eval", *QUICK, "--variant", "sd15-identity", "--out", str(tmp_path / "x")]) == 2
    assert "needs a face photo (--face PHOTO)" in capsys.readouterr().err


def test_the_sd15_identity_variant_renders_every_case_with_the_face_and_records_only_its_hash(tmp_path):
    photo = face_picture(tmp_path / "ana.png")
    out = tmp_path / "face-report"
    assert main(["eval", *QUICK, "--variant", "sd15-identity", "--face", str(photo), "--limit", "2",
                 "--out", str(out)]) == 0
    rows = read_rows(out)
    assert len(rows) == 2 and all(read_settings(out / row["image"])["pipeline"] == "sd15-identity" for row in rows)
    recorded = (out / "run.json").read_text() + (out / "summary.json").read_text() + (out / "REPORT.md").read_text()
    assert hashlib.sha256(photo.read_bytes()).hexdigest() in recorded and "ana.png" not in recorded
    assert "--face PHOTO" in recorded


def test_two_processes_under_accelerate_make_each_image_once_and_the_same_rows(one_process_run, tmp_path):
    """`accelerate launch --multi_gpu` starts one process per GPU; without GPUs (here) they run on the CPU."""
    out = tmp_path / "two"
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "-m", "fineface_ui", "eval", *QUICK, "--limit", "6", "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, env=ONE_THREAD, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    shares = re.findall(r"(\w+) \(process (\d) of 2\): 100%\|[^|]*\| (\d+)/\d+", done.stderr)
    made = {(stem, process): int(count) for stem, process, count in shares}
    assert made[("results", "1")] > 0 and made[("results", "2")] > 0  # both processes rendered
    assert made[("results", "1")] + made[("results", "2")] == 6
    assert made[("neutral", "1")] + made[("neutral", "2")] == len({case.prompt_index for case in paper_cases(6)})
    ours, single = read_rows(out), read_rows(one_process_run)
    # The images and readings bit for bit; CLIP-I to 1e-5 (CPU kernels may sum in another order in another
    # process, even on one thread: seen as 1e-6 here).
    assert [{**row, "clip_i": None} for row in ours] == [{**row, "clip_i": None} for row in single]
    assert [row["clip_i"] for row in ours] == pytest.approx([row["clip_i"] for row in single], abs=1e-5)
    for row in ours:
        assert np.array_equal(np.asarray(Image.open(out / row["image"])),
                              np.asarray(Image.open(one_process_run / row["image"])))
    assert not (out / "parts").exists()
