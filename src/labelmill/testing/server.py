"""A small OpenAI- and Anthropic-compatible HTTP server for tests and benchmarks, with injectable faults.

It answers /v1/chat/completions, /v1/completions and /v1/messages after a fixed latency. The answer
is a deterministic function of the last user message: one of `labels` picked by a hash (or "ok"), so
two runs over the same rows get the same answers. Faults are drawn per request with probability
`fault_rate`, each kind at most `max_faults` times, from a seeded generator:

  429        Too Many Requests with Retry-After
  500        Internal Server Error
  slow       the answer comes after `slow_s` (past the client's timeout)
  malformed  200 with a body that is not JSON
  reset      the connection is closed with no answer

`down` (settable while running) answers every request with 503, to trip a client's circuit breaker.

    python -m labelmill.testing.server --port 8099 --latency 0.2 --labels positive,negative
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

FAULT_KINDS = ("429", "500", "slow", "malformed", "reset")


@dataclass
class ServerOptions:
    latency_s: float = 0.0
    labels: list[str] = field(default_factory=list)
    fault_rate: float = 0.0
    faults: tuple[str, ...] = FAULT_KINDS
    max_faults: int = 1_000_000  # per kind
    slow_s: float = 5.0
    retry_after_s: float = 1.0
    seed: int = 0
    down: bool = False


class FakeModelServer:
    """Runs on its own event loop thread; `start()` returns the base URL (http://127.0.0.1:PORT/v1)."""

    def __init__(self, options: ServerOptions | None = None, port: int = 0):
        self.options = options or ServerOptions()
        self.port = port
        self.rng = random.Random(self.options.seed)
        self.counts: Counter = Counter()  # requests, answered, and each fault kind served
        self.prompts: Counter = Counter()  # how often each distinct last user message was asked
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> str:
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", self.port))
            self.port = sock.getsockname()[1]
            self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, sock=sock, backlog=1024))
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="fake-model-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self.base_url

    def stop(self) -> None:
        if self._loop is None:
            return

        async def shutdown() -> None:
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop = None

    def __enter__(self) -> FakeModelServer:  # noqa: PYI034
        self.start()
        return self

    def __exit__(self, *_) -> None:
        self.stop()

    # HTTP ---------------------------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                if not await self._respond(method, path, body, writer):
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError, asyncio.CancelledError):
            pass  # the client went away, or the server is shutting down
        finally:
            try:
                writer.close()
            except (OSError, RuntimeError):
                pass

    async def _respond(self, method: str, path: str, body: bytes, writer: asyncio.StreamWriter) -> bool:
        """Write one response; False when the connection was dropped on purpose."""
        options = self.options
        if method == "GET" and path.rstrip("/").endswith("/models"):
            return await self._send(writer, 200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
        if method == "GET" and path.rstrip("/").endswith("/stats"):  # what was asked and which faults were served
            return await self._send(writer, 200, dict(self.counts))
        self.counts["requests"] += 1
        if path not in ("/v1/chat/completions", "/v1/completions", "/v1/messages"):
            return await self._send(writer, 404, {"error": {"message": f"no route {path}", "type": "not_found"}})
        if options.down:
            self.counts["down"] += 1
            return await self._send(writer, 503, {"error": {"message": "server down", "type": "server_error"}})
        fault = self._draw_fault()
        if fault:
            self.counts[f"fault_{fault}"] += 1
        if fault == "reset":
            writer.transport.abort()
            return False
        try:
            request = json.loads(body or b"{}")
        except json.JSONDecodeError:
            return await self._send(writer, 400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
        await asyncio.sleep(options.slow_s if fault == "slow" else options.latency_s)
        if fault == "429":
            return await self._send(writer, 429, {"error": {"message": "rate limited", "type": "rate_limit_error"}}, {"Retry-After": f"{options.retry_after_s:g}"})
        if fault == "500":
            return await self._send(writer, 500, {"error": {"message": "internal error", "type": "server_error"}})
        if fault == "malformed":
            return await self._send(writer, 200, b'{"id": "x", "choices": [')
        user = _last_user_text(request, path)
        self.prompts[user] += 1
        reply = self.reply(user)
        self.counts["answered"] += 1
        return await self._send(writer, 200, self._payload(path, request, reply))

    def _draw_fault(self) -> str | None:
        options = self.options
        if options.fault_rate <= 0 or self.rng.random() >= options.fault_rate:
            return None
        open_kinds = [k for k in options.faults if self.counts[f"fault_{k}"] < options.max_faults]
        return self.rng.choice(open_kinds) if open_kinds else None

    async def _send(self, writer: asyncio.StreamWriter, status: int, payload, extra_headers: dict | None = None) -> bool:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}.get(status, "OK")
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body)), "Connection": "keep-alive", **(extra_headers or {})}
        head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        writer.write(head.encode("latin-1") + body)
        await writer.drain()
        return True

    # answers ------------------------------------------------------------------------------------------
    def reply(self, user: str) -> str:
        labels = self.options.labels
        if not labels:
            return "ok"
        return labels[int(hashlib.sha256(user.encode()).hexdigest(), 16) % len(labels)]

    def _payload(self, path: str, request: dict, reply: str) -> dict:
        prompt_tokens = max(1, len(json.dumps(request.get("messages") or request.get("prompt") or "")) // 4)
        completion_tokens = max(1, len(reply) // 4)
        others = [label for label in self.options.labels if label != reply][:4]
        if path.endswith("/messages"):
            return {
                "id": f"msg_{self.counts['answered']}", "type": "message", "role": "assistant", "model": request.get("model", "fake"),
                "content": [{"type": "text", "text": reply}], "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": prompt_tokens, "output_tokens": completion_tokens},
            }
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens}
        if path.endswith("/completions") and not path.endswith("/chat/completions"):
            logprobs = None
            if request.get("logprobs"):
                logprobs = {"tokens": [reply], "token_logprobs": [-0.05], "top_logprobs": [{reply: -0.05, **{o: -3.5 for o in others}}], "text_offset": [0]}
            return {
                "id": "cmpl-1", "object": "text_completion", "created": int(time.time()), "model": request.get("model", "fake"),
                "choices": [{"index": 0, "text": reply, "logprobs": logprobs, "finish_reason": "stop"}], "usage": usage,
            }
        logprobs = None
        if request.get("logprobs"):
            top = [{"token": reply, "logprob": -0.05, "bytes": None}] + [{"token": o, "logprob": -3.5, "bytes": None} for o in others]
            logprobs = {"content": [{"token": reply, "logprob": -0.05, "bytes": None, "top_logprobs": top}]}
        return {
            "id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()), "model": request.get("model", "fake"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "logprobs": logprobs, "finish_reason": "stop"}],
            "usage": usage,
        }


def _last_user_text(request: dict, path: str) -> str:
    if "messages" in request:
        for message in reversed(request["messages"]):
            if message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, list):
                    return "".join(part.get("text", "") for part in content if isinstance(part, dict))
                return str(content)
    return str(request.get("prompt", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--labels", default="")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--slow", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    options = ServerOptions(
        latency_s=args.latency, labels=[x for x in args.labels.split(",") if x], fault_rate=args.fault_rate, slow_s=args.slow, seed=args.seed
    )
    server = FakeModelServer(options, port=args.port)
    print(server.start(), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
