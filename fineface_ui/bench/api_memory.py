"""Benchmark: `python -m fineface_ui.bench.api_memory`. Measures, never asserts.

Starts the web app with random weights in a child process, calls `/generate` over raw HTTP (tiny
settings: one step, 256x256) with each call a new session, as a client that never reuses one does,
and prints the server's resident memory every 100 calls, then its slope over the last 500 calls.
A server that keeps something per session grows linearly here; a bounded one stays flat.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time

import httpx
import numpy as np
import psutil

TINY = {"prompt": "a face", "num_inference_steps": 1, "width": 256, "height": 256}
START_TIMEOUT_S = 300


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    """`fineface-ui serve --random-weights` in a child process, so that its memory is the server's alone."""
    command = [sys.executable, "-m", "fineface_ui", "serve", "--random-weights", "--host", "127.0.0.1",
               "--port", str(port)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_until_serving(http: httpx.Client, url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with status {server.returncode}")
        try:
            if http.get(f"{url}/gradio_api/info").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the server did not answer within {START_TIMEOUT_S} s")


def generate_values(http: httpx.Client, url: str) -> list:
    """/generate's values in order: the tiny settings, every other parameter at its default."""
    parameters = http.get(f"{url}/gradio_api/info").json()["named_endpoints"]["/generate"]["parameters"]
    return [TINY.get(p["parameter_name"], p.get("parameter_default")) for p in parameters]


def generate_in_new_session(http: httpx.Client, url: str, values: list) -> None:
    """One /generate call. Sent without a session, Gradio gives the call a session of its own (its event id)."""
    event_id = http.post(f"{url}/gradio_api/call/generate", json={"data": values}).raise_for_status().json()["event_id"]
    event = ""
    with http.stream("GET", f"{url}/gradio_api/call/generate/{event_id}") as events:
        for line in events.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event in ("complete", "error"):
                if event == "error":
                    raise RuntimeError(f"/generate failed: {line.removeprefix('data: ')}")
                return
    raise RuntimeError("/generate's event stream ended without a result")


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def slope_per_100_calls(calls: list[int], rss: list[float]) -> float:
    """Least-squares slope of RSS against calls, in MB per 100 calls."""
    return float(np.polyfit(calls, rss, 1)[0] * 100)


def measure(calls: int, every: int) -> list[tuple[int, float]]:
    """(calls made, server RSS in MB) after every `every` calls, starting with one warm-up call."""
    url = f"http://127.0.0.1:{free_port()}"
    server = start_server(int(url.rsplit(":", 1)[1]))
    try:
        with httpx.Client(timeout=120) as http:
            wait_until_serving(http, url, server)
            values = generate_values(http, url)
            generate_in_new_session(http, url, values)  # loads and warms the pipeline: not growth per call
            samples = [(0, rss_mb(server.pid))]
            print(f"{0:>6} calls  {samples[-1][1]:8.1f} MB", flush=True)
            for done in range(1, calls + 1):
                generate_in_new_session(http, url, values)
                if done % every == 0:
                    samples.append((done, rss_mb(server.pid)))
                    print(f"{done:>6} calls  {samples[-1][1]:8.1f} MB", flush=True)
        return samples
    finally:
        server.terminate()
        server.wait(30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fineface_ui.bench.api_memory", description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=1000, help="number of /generate calls (default 1000)")
    parser.add_argument("--every", type=int, default=100, help="sample the server's RSS every N calls (default 100)")
    args = parser.parse_args(argv)
    samples = measure(args.calls, args.every)
    last = [(done, rss) for done, rss in samples if done >= samples[-1][0] - 500]
    if len(last) >= 2:
        calls, rss = zip(*last)
        print(f"slope over calls {calls[0]}-{calls[-1]}: {slope_per_100_calls(list(calls), list(rss)):+.2f} MB "
              "per 100 calls")
    return 0


if __name__ == "__main__":
    sys.exit(main())
