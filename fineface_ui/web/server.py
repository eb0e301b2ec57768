"""The web app: its command-line options, the page with its queue, and the launch settings.

`python app.py`, `fineface-ui serve` and a Hugging Face Space all start here. Gradio and the models
are imported only once the app really starts, so `--help` answers at once.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Sequence

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import gradio as gr

    from ..studio import Studio

# Requests waiting at most, beyond which new ones are told the queue is full (HTTP 503) instead of waiting
# minutes: room for dozens of visitors and API clients with a request each in flight.
QUEUE_SIZE = 64
MAX_UPLOAD = "20mb"
# Gradio keeps a copy of the page's configuration (about 0.2 MB) for every session it has seen, until it
# drops the least recently used beyond this many (its default, 10,000, is 2 GB), and every API call made
# without a session is one. A browser tab left idle while this many other sessions ran starts afresh.
SESSIONS_KEPT = 256
ON_SPACE = "SPACE_ID" in os.environ


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The web app's options, shared by `app.py` and `fineface-ui serve`."""
    # Gradio's own variables first, as hosting setups set them; a Space must listen on all interfaces.
    host = os.environ.get("GRADIO_SERVER_NAME") or ("0.0.0.0" if ON_SPACE else "127.0.0.1")
    parser.add_argument("--random-weights", action="store_true",
                        help="tiny untrained models written to a temp folder: everything works, images are noise")
    parser.add_argument("--host", default=host, help=f"interface to listen on (default: GRADIO_SERVER_NAME or {host})")
    parser.add_argument("--port", type=int, default=os.environ.get("GRADIO_SERVER_PORT", "7860"),
                        help="port (default: GRADIO_SERVER_PORT or 7860)")
    parser.add_argument("--share", action="store_true", help="also serve through a public gradio.live link")
    parser.add_argument("--device", help="cuda, cpu, ... (default: cuda when available)")
    parser.add_argument("--no-compile", action="store_true",
                        help="skip torch.compile on CUDA: starts a minute or two sooner, renders about 130 ms slower")
    parser.add_argument("--preload", action=argparse.BooleanOptionalAction, default=ON_SPACE,
                        help="load the face pipeline, the face models and the AU reader at start too, not on "
                             "first use (default: on in a Hugging Face Space)")
    return parser


def create_app(studio: "Studio") -> "gr.Blocks":
    """The page with its queue: the page's renders one at a time, newer ones replacing older queued ones;
    API calls in slots of their own (http_api.API); at most QUEUE_SIZE requests waiting."""
    from .ui import build_ui

    demo = build_ui(studio).queue(max_size=QUEUE_SIZE, default_concurrency_limit=1)
    explain_refused_values(demo)
    return demo


def explain_refused_values(demo: "gr.Blocks") -> None:
    """Give the requests that Gradio refuses before any of the app's code runs (a file it did not upload,
    a URL it cannot fetch, too few values) a readable reason instead of `{"error": null}`.

    Gradio sends the text of such a failure only under launch(show_error=True), and then also sends the
    text of every unexpected exception, some of which name the server's folders: Gradio's own refusal of
    a relative file path names the working directory, a result file it cannot move names the app's temp
    folder. Gradio 6.31 (pinned in requirements.txt) has no hook for these errors (its queue catches them
    before FastAPI's exception handlers), so this instance's `preprocess_data`, the step that checks and
    fetches a request's values, is wrapped; tests/test_rejected_requests.py fails if Gradio stops calling it.
    """
    import gradio as gr
    from gradio.exceptions import InvalidPathError

    preprocess = demo.preprocess_data

    async def preprocess_readably(block_fn: Any, inputs: list[Any], *args: Any, **kwargs: Any) -> Any:
        if len(inputs) < len(block_fn.inputs):  # Gradio's own message lists the components' object ids
            raise gr.Error(too_few_values(block_fn.api_name or block_fn.name, len(block_fn.inputs), len(inputs)),
                           print_exception=False)
        try:
            return await preprocess(block_fn, inputs, *args, **kwargs)
        except gr.Error:
            raise
        except InvalidPathError:
            raise gr.Error(NOT_UPLOADED, print_exception=False) from None
        except Exception as error:
            log.info("refused a request's values: %r", error)
            raise gr.Error(refusal(error, file_urls(inputs)), print_exception=False) from None

    demo.preprocess_data = preprocess_readably  # type: ignore[method-assign]


NOT_UPLOADED = ("A file in the request was not uploaded to this app: upload it first and send the path the "
                "upload returned (gradio_client's handle_file does both).")


def too_few_values(endpoint: str, wanted: int, given: int) -> str:
    return (f"{endpoint} takes {wanted} values, one per parameter in order, but the request has {given}. "
            "The app's API page lists them with their defaults; gradio_client fills in the defaults itself.")


def file_urls(values: Any) -> list[str]:
    """The URLs of the files among a request's values (Gradio fetches them before the app sees them)."""
    from gradio_client.utils import is_http_url_like, traverse

    urls: list[str] = []
    # Not gradio_client's is_file_obj_with_meta: it raises on a malformed "meta", which is what may have failed.
    traverse(values, lambda file: urls.append(file["path"]),
             lambda value: isinstance(value, dict) and is_http_url_like(value.get("path")))
    return urls


def refusal(error: Exception, urls: list[str]) -> str:
    """What to tell the client about values Gradio could not take: its reason, unless that names a folder of
    the server (then only the kind of error)."""
    reason = str(error).strip().split("\n")[0]
    if not reason or any(folder in reason for folder in server_folders()):
        reason = type(error).__name__
    if urls:
        return f"Could not fetch the file at {', '.join(urls)}: {reason}"
    return f"The request's values were refused before rendering: {reason}"


def server_folders() -> set[str]:
    """Folders whose names a reply must not reveal: the working directory, the temp folder (Gradio's cache
    and the app's result folders are in it, unless GRADIO_TEMP_DIR moves the cache) and the home folder."""
    from gradio.utils import get_upload_folder

    folders = {os.getcwd(), tempfile.gettempdir(), get_upload_folder(), os.path.expanduser("~"), sys.prefix}
    return {folder for folder in folders if len(folder) > 1}  # a home of "/" would hide every reason


def unknown_endpoint(request: Any, error: Exception) -> Any:
    """`POST /gradio_api/call/<name>` with a name no endpoint has: a 404 that lists the endpoints, where
    Gradio's own error would reach the client as an HTTP 500."""
    from fastapi.responses import JSONResponse

    names = sorted(f"/{fn.api_name}" for fn in request.app.get_blocks().fns.values()
                   if fn.api_name and fn.api_visibility == "public")
    asked = request.path_params.get("api_name", "")
    return JSONResponse({"error": f"This app has no endpoint /{asked}; its endpoints are {', '.join(names)}."},
                        status_code=404)


def launch(demo: "gr.Blocks", host: str = "127.0.0.1", port: int = 7860, share: bool = False, **options: Any) -> Any:
    """Launch with this app's safety settings; `options` go to gr.Blocks.launch (e.g. prevent_thread_lock)."""
    from gradio.route_utils import FnIndexInferError
    from starlette.middleware import Middleware

    from .same_origin import SameOriginPosts
    from .ui import CSS

    app_kwargs = dict(options.pop("app_kwargs", None) or {})
    app_kwargs["exception_handlers"] = {**app_kwargs.get("exception_handlers", {}), FnIndexInferError: unknown_endpoint}
    if not ON_SPACE:
        # What it guards is an app on the user's own machine, which any page they visit could post to.
        # A Space is public, so a foreign page can do nothing there that any client cannot, and its
        # proxy's host names are not ours to rely on.
        app_kwargs["middleware"] = [*app_kwargs.get("middleware", []), Middleware(SameOriginPosts)]
    return demo.launch(
        server_name=host,
        server_port=port,
        share=share,
        max_file_size=MAX_UPLOAD,
        # Gradio's run history would keep uploaded face photos in the browser's storage.
        run_history=False,
        footer_links=["api", "gradio", "settings"],
        allowed_paths=[],
        state_session_capacity=SESSIONS_KEPT,
        css=CSS,
        app_kwargs=app_kwargs,
        **options,
    )


def load_studio(args: argparse.Namespace) -> "Studio":
    """The models the options ask for, loaded before the page is served so that a missing file stops the start."""
    from ..studio import Studio

    if args.random_weights:
        studio = Studio.with_random_weights(tempfile.mkdtemp(prefix="fineface-random-"))
    else:
        from ..engine.acceleration import Acceleration
        from ..engine.pipeline import default_device_and_dtype

        acceleration = Acceleration.default_for(default_device_and_dtype(args.device, None)[0])
        if args.no_compile:
            acceleration = replace(acceleration, compile=False)
        studio = Studio.from_pretrained(device=args.device, acceleration=acceleration)
        studio.text_pipeline()
    if args.preload:
        studio.face_embedder()
        studio.identity_pipeline()
        studio.au_reader().load()
    return studio


def serve(args: argparse.Namespace) -> int:
    """Load the models, then serve the page until interrupted; 2 when the models cannot be loaded."""
    from ..errors import FineFaceError
    from . import zero_gpu  # noqa: F401  (on ZeroGPU, `spaces` must come before anything touches CUDA)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        studio = load_studio(args)
    except FineFaceError as error:
        print(f"Cannot start FineFace UI: {error}", file=sys.stderr)
        return 2
    launch(create_app(studio), host=args.host, port=args.port, share=args.share)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = add_arguments(argparse.ArgumentParser(prog="app.py", description="Start the FineFace UI web app."))
    return serve(parser.parse_args(argv))
