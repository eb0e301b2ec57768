"""Start the FineFace UI web app: `python app.py` (add --random-weights to try it without model files)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from dataclasses import replace
from typing import Any, Sequence

import gradio as gr

from fineface_ui.acceleration import Acceleration
from fineface_ui.errors import MissingWeightsError
from fineface_ui.pipeline import default_device_and_dtype
from fineface_ui.studio import Studio
from fineface_ui.ui import CSS, build_ui

QUEUE_SIZE = 16  # beyond this, new visitors are told the queue is full instead of waiting minutes
MAX_UPLOAD = "20mb"


def create_app(studio: Studio) -> gr.Blocks:
    """The page with its queue: one generation at a time, newer requests replace older queued ones."""
    return build_ui(studio).queue(max_size=QUEUE_SIZE, default_concurrency_limit=1)


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, share: bool = False, **options: Any) -> Any:
    """Launch with this app's safety settings; `options` go to gr.Blocks.launch (e.g. prevent_thread_lock)."""
    return demo.launch(
        server_name=host,
        server_port=port,
        share=share,
        max_file_size=MAX_UPLOAD,
        # Gradio's run history would keep uploaded face photos in the browser's storage.
        run_history=False,
        footer_links=["api", "gradio", "settings"],
        allowed_paths=[],
        css=CSS,
        **options,
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    on_space = "SPACE_ID" in os.environ  # a Hugging Face Space must listen on all interfaces
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--random-weights", action="store_true",
                        help="tiny untrained models written to a temp folder: everything works, images are noise")
    parser.add_argument("--host", default="0.0.0.0" if on_space else "127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--share", action="store_true", help="also serve through a public gradio.live link")
    parser.add_argument("--device", help="cuda, cpu, ... (default: cuda when available)")
    parser.add_argument("--no-compile", action="store_true",
                        help="skip torch.compile on CUDA: starts a minute or two sooner, renders about 130 ms slower")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.random_weights:
        studio = Studio.with_random_weights(tempfile.mkdtemp(prefix="fineface-random-"))
    else:
        acceleration = Acceleration.default_for(default_device_and_dtype(args.device, None)[0])
        if args.no_compile:
            acceleration = replace(acceleration, compile=False)
        studio = Studio.from_pretrained(device=args.device, acceleration=acceleration)
        try:
            studio.text_pipeline()  # fail before serving a page that cannot render anything
        except MissingWeightsError as error:
            print(f"Cannot start FineFace UI: {error}", file=sys.stderr)
            return 2
    launch(create_app(studio), host=args.host, port=args.port, share=args.share)
    return 0


if __name__ == "__main__":
    sys.exit(main())
