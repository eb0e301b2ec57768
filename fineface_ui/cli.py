"""Command line: `fineface-ui generate|animate|edit|read-aus|eval|batch|download|doctor|serve`
(or `python -m fineface_ui ...`).

Only the chosen command imports what it needs, so `--help` answers at once.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from .errors import FineFaceError, InvalidInputError
from .settings import PROMPT, SETTINGS, SPEC, UPSCALE_SETTINGS, Setting

if TYPE_CHECKING:
    from .faces.au_reader import AUReader
    from .studio import Studio


def _add_setting(parser: argparse.ArgumentParser, setting: Setting, default: Any) -> None:
    """A setting's flag, its accepted values and default in the help."""
    parser.add_argument(setting.flag, dest=setting.name, type=setting.kind, choices=setting.choices or None,
                        default=default, help=f"{setting.help} ({setting.accepted()}; default {setting.default!r})")


def _generate_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("generate", help="render one image and write it as PNG with its settings")
    parser.add_argument(PROMPT.flag, help=PROMPT.help)
    parser.add_argument("--au", action="append", default=None, metavar="AU=VALUE",
                        help="an AU intensity, e.g. --au AU12=3 --au AU6=2 (repeatable)")
    parser.add_argument("--from", dest="from_png", type=Path, help="start from the settings stored in a PNG")
    parser.add_argument("--face", action="append", type=Path, default=[], help="a photo of the person (repeatable)")
    parser.add_argument("--aus-from", type=Path, metavar="PHOTO",
                        help="copy the expression of the face in PHOTO (read with LibreFace); --au values win")
    for setting in SETTINGS:
        # No argparse default: a setting not given keeps the value of --from, else the spec's default.
        _add_setting(parser, setting, default=None)
    for setting in UPSCALE_SETTINGS:  # given: the image is upscaled before it is written
        parser.add_argument(setting.flag, dest=f"upscale_{setting.name}", type=setting.kind, default=None,
                            help=f"{setting.help} ({setting.accepted()}; default {setting.default!r}); "
                            "given, the image is upscaled and redrawn before it is written")
    parser.add_argument("--out", type=Path, default=Path("fineface.png"))
    _add_models(parser)


def _add_models(parser: argparse.ArgumentParser) -> None:
    """Where the models come from and run, for the commands that render."""
    parser.add_argument("--device", help="cuda, cpu, ... (default: cuda when available)")
    parser.add_argument("--base-model", help="SD 2.1 base: Hub repo id or local diffusers folder")
    parser.add_argument("--fineface-weights", help="Hub repo id or folder with the FineFace files")
    parser.add_argument("--random-weights", action="store_true", help="tiny random models (offline smoke test)")


def _animate_parser(commands: argparse._SubParsersAction) -> None:
    from .keyframes import DEFAULT_EASING, DEFAULT_FPS, EASINGS, FPS_RANGE, MAX_FRAMES, MAX_SECONDS

    parser = commands.add_parser("animate", help="render a keyframed expression as MP4 (H.264), GIF and PNG frames")
    parser.add_argument("--keys", required=True, metavar="KEYFRAMES",
                        help='time:AUs pairs, e.g. "0:neutral; 1:AU1=3,AU2=3,AU26=4; 2:AU6=3,AU12=4" (seconds; '
                        "a preset name also works, e.g. 2:happiness)")
    parser.add_argument("--seconds", type=float, help=f"the length (default: the last keyframe's time; at most "
                        f"{MAX_SECONDS:g} s)")
    parser.add_argument("--fps", type=int, default=DEFAULT_FPS, help=f"frames per second ({FPS_RANGE[0]} to "
                        f"{FPS_RANGE[1]}; default {DEFAULT_FPS}; at most {MAX_FRAMES} frames in all)")
    parser.add_argument("--easing", choices=EASINGS, default=DEFAULT_EASING,
                        help="how each AU moves between keyframes: linear, or ease (slow at each keyframe)")
    parser.add_argument(PROMPT.flag, default="", help=PROMPT.help)
    parser.add_argument("--face", action="append", type=Path, default=[], help="a photo of the person (repeatable)")
    for setting in SETTINGS:
        _add_setting(parser, setting, default=None)
    parser.add_argument("--out", type=Path, default=Path("fineface.mp4"),
                        help="the MP4; the GIF and a folder of PNG frames go beside it (NAME.gif, NAME-frames/)")
    _add_models(parser)


def _edit_parser(commands: argparse._SubParsersAction) -> None:
    from .edit_settings import EDIT_SETTINGS

    parser = commands.add_parser("edit", help="change the expression of the face in a photo (MagicFace) and write "
                                 "the whole photo as PNG with its settings")
    parser.add_argument("photo", type=Path, metavar="PHOTO")
    parser.add_argument("--set", action="append", default=None, metavar="AU=VALUE",
                        help="an AU's target intensity, e.g. --set AU12=4 (repeatable; 0..5 as the photo's AUs are "
                        "read; the AUs not named keep the photo's own)")
    parser.add_argument("--change", action="append", default=None, metavar="AU=CHANGE",
                        help="an AU's change from the photo's own intensity, e.g. --change AU12=+2 (repeatable)")
    parser.add_argument("--face-at", metavar="X,Y", help="the face at this pixel of the photo (default: the largest)")
    for setting in EDIT_SETTINGS:
        _add_setting(parser, setting, default=None)
    parser.add_argument("--out", type=Path, default=Path("edited.png"))
    parser.add_argument("--device", help="cuda, cpu, ... (default: cuda when available)")
    parser.add_argument("--magicface-weights", help="Hub repo id or folder with MagicFace's files")
    parser.add_argument("--magicface-base-model", help="SD 1.5: Hub repo id or local diffusers folder")
    parser.add_argument("--random-weights", action="store_true", help="tiny random models (offline smoke test)")


def build_parser() -> argparse.ArgumentParser:
    from .web.server import add_arguments

    parser = argparse.ArgumentParser(prog="fineface-ui", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    _generate_parser(commands)
    _animate_parser(commands)
    _edit_parser(commands)
    download = commands.add_parser("download", help="fetch every model file into the Hugging Face cache ahead of time")
    download.add_argument("--force", action="store_true",
                          help="fetch again what is already there (repairs a truncated or corrupt file)")
    download.add_argument("--eval", dest="evaluation", action="store_true",
                          help="also CLIP ViT-L/14 (1.7 GB), which `fineface-ui eval` uses")
    commands.add_parser("doctor", help="print torch/CUDA, ONNX Runtime providers and where each weight file is")
    read = commands.add_parser("read-aus", help="read the twelve AU intensities (0..5) of the face in each photo")
    read.add_argument("photos", nargs="+", type=Path, metavar="PHOTO")
    read.add_argument("--json", action="store_true", help="print JSON: per photo its AUs and the face's box")
    read.add_argument("--random-weights", action="store_true",
                      help="a tiny random reader and face detector (offline smoke test: the values mean nothing)")
    _eval_parser(commands)
    batch = commands.add_parser("batch", help="one image per line of a JSON-lines settings file, written as a "
                                "Hugging Face imagefolder dataset with the AUs read back")
    batch.add_argument("settings_file", type=Path, metavar="SETTINGS.jsonl",
                       help='one JSON object a line: the fields of /generate, plus an optional "photo" path')
    batch.add_argument("--out", type=Path, required=True, help="the dataset folder (made images are kept: resumable)")
    batch.add_argument("--random-weights", action="store_true", help="tiny random models (offline smoke test)")
    add_arguments(commands.add_parser("serve", help="start the web app (the same options as app.py)"))
    return parser


def _eval_parser(commands: argparse._SubParsersAction) -> None:
    from .evaluation.protocol import VARIANTS

    parser = commands.add_parser("eval", help="the paper's Table 1 (AU MSE, CLIP-I) on 1,650 images, with a report")
    parser.add_argument("--variant", choices=VARIANTS, default="sd21",
                        help="sd21: text + AUs; sd15-identity: text + AUs + the face of --face")
    parser.add_argument("--face", type=Path, help="the identity photo of --variant sd15-identity")
    for name in ("scheduler", "num_inference_steps", "guidance_scale"):
        _add_setting(parser, SPEC[name], default=SPEC[name].default)
    _add_setting(parser, SPEC["lora_scale"], default=None)  # None: the strength the LoRA was trained with
    parser.add_argument("--limit", type=int, help="a quick subset of N images, drawn evenly from the 1,650")
    parser.add_argument("--batch-size", type=int, default=8, help="images per pipeline call (default 8)")
    parser.add_argument("--clip", help="CLIP model for CLIP-I: Hub repo id or folder (default "
                        "openai/clip-vit-large-patch14)")
    parser.add_argument("--out", type=Path, default=Path("fineface-eval"),
                        help="the report folder; an unfinished run there is resumed")
    parser.add_argument("--compare", type=Path, metavar="OTHER_REPORT", help="print the differences with "
                        "another report folder")
    parser.add_argument("--random-weights", action="store_true",
                        help="tiny random models, reader and CLIP (offline smoke test: the numbers mean nothing)")


def generate(args: argparse.Namespace) -> Path:
    from .aus import parse_au_string
    from .png_info import read_settings, save_png
    from .settings import GenerationSettings, Upscale

    stored = read_settings(args.from_png) if args.from_png else {}
    if stored.get("faces") and not args.face:
        raise InvalidInputError(f"{args.from_png.name} was made from {stored['faces']} face photo(s): "
                                "pass them again with --face to reproduce it.")
    values = GenerationSettings.from_metadata(stored).as_dict() if stored else {"prompt": "", "aus": [{}]}
    values.update({name: getattr(args, name) for name in SPEC if getattr(args, name) is not None})
    if args.prompt is not None:
        values["prompt"] = args.prompt
    given = {setting.name: getattr(args, f"upscale_{setting.name}") for setting in UPSCALE_SETTINGS}
    upscale = Upscale.create(**{name: value for name, value in given.items() if value is not None})
    upscaling = any(value is not None for value in given.values())
    if upscaling:  # refused now, not after the first render, when it would run no step
        upscale.steps(values.get("num_inference_steps", SPEC["num_inference_steps"].default))

    with tempfile.TemporaryDirectory(prefix="fineface-random-") as scratch:
        studio = _studio(args, Path(scratch))
        copied = {}
        if args.aus_from is not None:
            [reading] = studio.read_aus([args.aus_from])
            copied = {name: round(value, 1) for name, value in reading.aus.items()}  # as the sliders show it
            values["aus"] = [copied]
        if args.au is not None:  # the AUs given, over those copied from a photo (not over those of --from)
            values["aus"] = [{**copied, **parse_au_string(",".join(args.au))}]
        settings = GenerationSettings.create(values.pop("prompt"), values.pop("aus")[0], **values)
        result = studio.generate(settings, photos=args.face)
        if upscaling:
            result = studio.upscale(settings, result.output.images[0], args.face, upscale=upscale)
    return save_png(result.output.images[0], args.out, result.output.metadata_for(0))


def _studio(args: argparse.Namespace, scratch: Path) -> "Studio":
    """The models of --random-weights (written to `scratch`), or the real ones from --base-model and the others."""
    from .engine.acceleration import Acceleration
    from .engine.pipeline import default_device_and_dtype
    from .studio import Studio

    if args.random_weights:
        return Studio.with_random_weights(scratch)
    names = ("base_model", "fineface_weights", "magicface_weights", "magicface_base_model")
    sources = {name: getattr(args, name) for name in names if getattr(args, name, None)}
    # One run: CUDA graphs pay for their half-second capture, a minute-long compile does not.
    acceleration = Acceleration.default_for(default_device_and_dtype(args.device, None)[0], serving=False)
    return Studio.from_pretrained(device=args.device, acceleration=acceleration, **sources)


def animate(args: argparse.Namespace) -> list[Path]:
    """The MP4, the GIF and the folder of PNG frames; everything is checked before a model loads."""
    from .animation import frame_name, render_frames, write_videos
    from .keyframes import Motion
    from .png_info import save_png
    from .settings import GenerationSettings
    from .studio import RANDOM_WEIGHTS_DEFAULTS

    motion = Motion.create(args.keys, args.seconds, args.fps, args.easing)
    options = {name: getattr(args, name) for name in SPEC if getattr(args, name) is not None}
    if args.random_weights:  # a smoke test of seconds, not minutes, unless asked otherwise
        options = {**RANDOM_WEIGHTS_DEFAULTS, **options}
    settings = GenerationSettings.create(args.prompt, None, **options)
    if args.out.suffix.lower() != ".mp4":
        raise InvalidInputError(f"--out names the MP4 to write; end it in .mp4, not {args.out.name!r}.")
    for photo in args.face:
        if not photo.is_file():
            raise InvalidInputError(f"--face: there is no file at {photo}.")
    folder = args.out.with_name(f"{args.out.stem}-frames")
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("frame-*.png"):  # a longer run's frames would stay behind these
        old.unlink()
    names = (folder / frame_name(index) for index in range(motion.frame_count))
    with tempfile.TemporaryDirectory(prefix="fineface-random-") as scratch:
        studio = _studio(args, Path(scratch))
        for frames in render_frames(settings, motion, lambda chunk: studio.generate(chunk, args.face).output,
                                    lambda image, metadata: save_png(image, next(names), metadata)):
            print(f"frames {len(frames)} of {motion.frame_count}", file=sys.stderr)
    return [*write_videos(frames, args.out, args.out.with_suffix(".gif"), motion.fps), folder]


def edit(args: argparse.Namespace) -> Path:
    """The edited photo as PNG; the AUs and settings are checked before a model loads."""
    from .edit_settings import EDIT_SPEC, EditSettings, parse_point
    from .png_info import save_png
    from .studio import RANDOM_WEIGHTS_DEFAULTS

    options = {name: getattr(args, name) for name in EDIT_SPEC if getattr(args, name) is not None}
    if args.random_weights and args.num_inference_steps is None:  # a smoke test of seconds
        options["num_inference_steps"] = RANDOM_WEIGHTS_DEFAULTS["num_inference_steps"]
    request = {"aus": ",".join(args.set) if args.set else None,
               "change": ",".join(args.change) if args.change else None, **options}
    EditSettings.create({}, **request)
    point = parse_point(args.face_at)
    with tempfile.TemporaryDirectory(prefix="fineface-random-") as scratch:
        studio = _studio(args, Path(scratch))
        photo = studio.read_for_edit(args.photo, point)
        output = studio.edit(photo, EditSettings.create(photo.aus_read, **request))
    return save_png(output.images[0], args.out, output.metadata)


def read_aus(args: argparse.Namespace) -> str:
    """The readings as a table, or as JSON: a list with, per photo, its name, AUs and the face used."""
    import json

    from .aus import AU_NAMES

    with tempfile.TemporaryDirectory(prefix="fineface-random-") as scratch:
        readings = au_reader(args.random_weights, Path(scratch)).read(args.photos)
    if args.json:
        return json.dumps([{"photo": photo.name, "aus": {name: round(value, 3) for name, value in reading.aus.items()},
                            "face": {"box": list(reading.face.box), "faces_found": reading.face.face_count}}
                           for photo, reading in zip(args.photos, readings)], indent=2)
    width = max(len(photo.name) for photo in args.photos)
    lines = [" ".join([f"{'photo':<{width}}", *(f"{name:>5}" for name in AU_NAMES), " face (x0, y0, x1, y1)"])]
    for photo, reading in zip(args.photos, readings):
        others = f", largest of {reading.face.face_count}" if reading.face.face_count > 1 else ""
        lines.append(" ".join([f"{photo.name:<{width}}", *(f"{reading.aus[name]:5.2f}" for name in AU_NAMES),
                               f" {reading.face.box}{others}"]))
    return "\n".join(lines)


def evaluate(args: argparse.Namespace, argv: Sequence[str]) -> None:
    """Run or resume the evaluation; the main process prints where the report is (and --compare's table)."""
    import shlex

    from .evaluation.evaluate import EvalOptions
    from .evaluation.evaluate import evaluate as run_evaluation
    from .evaluation.report import compare, read_summary

    options = EvalOptions(args.variant, args.face, args.scheduler, args.num_inference_steps, args.guidance_scale,
                          args.lora_scale, args.limit, args.clip, args.random_weights, args.batch_size)
    if args.compare is not None:
        read_summary(args.compare)  # a wrong folder is said now, not after hours of rendering
    # The report keeps the command without the face photo's name or path (run.json has its sha256).
    shown = ["PHOTO" if argv[at - 1] == "--face" else "--face=PHOTO" if word.startswith("--face=") else word
             for at, word in enumerate(argv)]
    report = run_evaluation(options, args.out, shlex.join(["fineface-ui", *shown]))
    if report is not None:
        print(f"wrote {report}")
        if args.compare is not None:
            print(compare(args.out, args.compare))


def batch(args: argparse.Namespace) -> int:
    """Exit status 2 when a line was skipped (each is reported), after making all the others."""
    from .evaluation.batch import run_batch

    problems = run_batch(args.settings_file, args.out, args.random_weights)
    for number, problem in problems:
        print(f"skipped line {number}: {problem}", file=sys.stderr)
    return 2 if problems else 0


def au_reader(random_weights: bool, scratch: Path) -> "AUReader":
    """LibreFace's reader with buffalo_l's detector; with `random_weights`, tiny stand-ins of both, written
    to `scratch`."""
    from .faces.au_reader import AUReader

    if random_weights:
        from .standins.tiny_au_reader import write_au_reader
        from .standins.tiny_face_models import write_model_pack

        write_model_pack(scratch / "insightface")
        return AUReader(model=write_au_reader(scratch / "au_reader.onnx"), face_pack=scratch / "insightface")
    from .faces.model_pack import ensure_model_pack

    return AUReader(face_pack=ensure_model_pack())


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        from .web.server import serve

        return serve(args)
    try:
        if args.command == "generate":
            print(f"wrote {generate(args)}")
        elif args.command == "animate":
            print("\n".join(f"wrote {path}" for path in animate(args)))
        elif args.command == "edit":
            print(f"wrote {edit(args)}")
        elif args.command == "read-aus":
            print(read_aus(args))
        elif args.command == "eval":
            evaluate(args, argv)
        elif args.command == "batch":
            return batch(args)
        elif args.command == "download":
            from .doctor import download_all

            download_all(force=args.force, evaluation=args.evaluation)
        else:
            from .doctor import report

            print(report())
    except FineFaceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
