"""Try a trained model in the browser: ``python -m tinysegnet.demo RUN/best.npz [--port P]``
(or ``--pretrained camvid``) serves a page on 127.0.0.1 where you upload or drop a street image
and see its classes with the legend, the overlay, each class's share of the pixels and the time
it took; with a Bayesian model, ``--samples N`` adds the uncertainty map.

Python's own ``http.server`` serves it: one page, one form, no framework to install, and
nothing listens beyond this machine. A bad upload (not an image, too large, too small) is a
message on the page and the server goes on serving.
"""

import email.parser
import email.policy
import os
import sys
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import cli, engine
from .backend import resolve_device
from .cli import non_negative_int
from .demo_page import MAX_BYTES, BadUpload, decode, has_dropout, page, segment

# A refused upload is read and dropped up to this many bytes, so the browser sees the answer;
# past it the connection is closed under the sender.
DRAIN_BYTES = 100_000_000


def main(argv=None):
    p = cli.ArgumentParser(prog="python -m tinysegnet.demo", description=__doc__.split("\n")[0])
    p.add_argument("checkpoint", nargs="?", help="a run's checkpoint (or --pretrained)")
    p.add_argument("--pretrained", choices=sorted(engine.pretrained.SHIPPED), help="a model shipped with tinysegnet")
    p.add_argument("--port", type=non_negative_int, default=8000, help="default 8000 (0: any free port)")
    p.add_argument("--samples", type=non_negative_int, default=0,
                   help="Monte Carlo dropout samples per image by default (Bayesian models; the page can change it)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"])
    cli.add_precision(p)
    args = p.parse_args(argv)
    if bool(args.checkpoint) == bool(args.pretrained):
        p.error("give a checkpoint or --pretrained NAME (one of them)")
    cli.run_main("demo", lambda: _serve(args))


def make_server(model, config, name, port=8000, samples=0):
    """An HTTP server on 127.0.0.1:``port`` serving the demo page for ``model``."""
    bayesian = has_dropout(model)
    title = "tinysegnet demo"
    model_line = (f"{name}: {config.model} trained at {config.size[0]}x{config.size[1]} on "
                  f"{config.data_dir or 'the synthetic set'}")

    class Handler(BaseHTTPRequestHandler):
        def _send(self, code, body):
            data = body.encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path not in ("/", "/index.html"):
                return self._send(404, page(title, model_line, error=f"no page {self.path}: the demo is at /"))
            self._send(200, page(title, model_line, samples_possible=bayesian, samples=samples))

        def do_POST(self):
            if self.path != "/segment":
                return self._send(404, page(title, model_line, error=f"no form at {self.path}"))
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BYTES:
                self.close_connection = True
                self._send(413, page(title, model_line, samples_possible=bayesian, samples=samples,
                                     error=f"the upload is {length / 1e6:.1f} MB: at most "
                                           f"{MAX_BYTES // 1_000_000} MB, please"))
                # read and drop what the browser is still sending, so that it gets to read the
                # answer instead of a connection closed under it (up to a limit: then it is closed)
                _discard(self.rfile, min(length, DRAIN_BYTES))
                return
            body = self.rfile.read(length)
            asked = samples
            try:
                fields = _form(self.headers.get("Content-Type", ""), body)
                asked = _samples(fields.get("samples", b""), samples) if bayesian else 0
                result = segment(model, config, decode(fields.get("image", b"")), asked)
            except BadUpload as e:
                return self._send(400, page(title, model_line, error=str(e), samples_possible=bayesian,
                                            samples=asked))
            except Exception:  # a bug of ours: its traceback where the server runs, and the server goes on
                traceback.print_exc()
                return self._send(500, page(title, model_line, error="internal error (its traceback is in the "
                                                                       "terminal running the demo)"))
            self._send(200, page(title, model_line, result, samples_possible=bayesian, samples=asked))

        def log_message(self, format, *args):
            sys.stderr.write(f"demo: {self.command} {self.path} {args[1] if len(args) > 1 else ''}\n")

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def _discard(stream, n):
    """Read ``n`` bytes of ``stream`` a block at a time, keeping none."""
    while n > 0:
        block = stream.read(min(n, 1 << 16))
        if not block:
            return
        n -= len(block)


def _form(content_type, body):
    """{field name: bytes} of a multipart/form-data body (the standard library's email parser)."""
    if not content_type.startswith("multipart/form-data"):
        raise BadUpload("the form was not sent as multipart/form-data: use the page's upload box")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode("latin-1") + body)
    return {part.get_param("name", header="content-disposition"): part.get_payload(decode=True) or b""
            for part in message.iter_parts()}


def _samples(text, default):
    try:
        value = int(text.decode() or default)
    except ValueError:
        raise BadUpload(f"samples must be a whole number, got {text.decode(errors='replace')!r}") from None
    if not 0 <= value <= 50:
        raise BadUpload(f"samples must be between 0 and 50, got {value}")
    return value


def _serve(args):
    cli.apply_precision(args)  # before the device is probed: CuPy reads it at its first product
    path = engine.pretrained.pretrained_path(args.pretrained) if args.pretrained else args.checkpoint
    model, config, _ = engine.load_run(path, resolve_device(args.device))
    if args.samples:
        cli.require_dropout(model, config.model, path)
    try:
        server = make_server(model, config, os.path.basename(path), args.port, args.samples)
    except OSError as e:
        raise cli.Misuse(f"cannot listen on 127.0.0.1:{args.port} ({e.strerror}): choose another --port") from None
    print(f"demo: serving {path} at http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
