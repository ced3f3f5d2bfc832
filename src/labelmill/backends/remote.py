"""What every model-server backend shares: async requests under a concurrency limit, a rate limiter,
retries with backoff that honour Retry-After, per-request timeouts, a circuit breaker, and a cost meter
with a hard cap.

A subclass implements one coroutine, `_complete(prompt, ...)`, that sends one request and returns a
`Generation` or raises. Everything else is here. `generate` is synchronous (the runner's seam): it runs
the batch's requests concurrently on an event loop that lives in a background thread for the backend's
whole life, so the HTTP connection pool stays warm between batches.

A request that still fails after its retries does not raise: its row gets a `Generation` whose `error`
names the kind (timeout, rate_limited, server_error, connection_error, malformed_response,
request_rejected). Rows the backend did not send because the run must stop (the budget is spent, the
server is down) get `budget_exhausted` or `server_unavailable`; the runner saves nothing for them and
stops cleanly, so a rerun sends exactly those rows.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import json
import os
import random
import threading
import time
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labelmill.errors import BackendError
from labelmill.types import Generation, Prompt
from labelmill.backends.base import Backend

if TYPE_CHECKING:
    from labelmill.config import ModelSpec

# USD per million tokens (input, output); `model.price` in the config overrides. Prices change: check yours.
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "claude-3-5-haiku-latest": (0.80, 4.00),
    "claude-haiku-4-5": (1.00, 5.00),
    "claude-sonnet-4-5": (3.00, 15.00),
    "claude-opus-4-1": (15.00, 75.00),
}



def aiohttp_client(sdk: Any) -> Any:
    """The SDK's aiohttp transport when it is installed (`pip install 'openai[aiohttp]'`): less CPU per request
    than the default one, which matters at hundreds of requests per second; else None (the default)."""
    try:
        import aiohttp  # noqa: F401

        return sdk.DefaultAioHttpClient()
    except (ImportError, RuntimeError, AttributeError):  # no aiohttp, or an SDK without this transport
        return None


class RequestFailed(Exception):
    """One failed attempt: its kind, whether a retry may help, and the server's Retry-After (seconds)."""

    def __init__(self, kind: str, detail: str, *, retry: bool, retry_after: float | None = None, server_fault: bool = False):
        super().__init__(detail)
        self.kind, self.detail, self.retry, self.retry_after, self.server_fault = kind, detail, retry, retry_after, server_fault


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class RateLimiter:
    """Token buckets for requests and tokens per minute; each refills continuously, bursts up to one second's worth."""

    def __init__(self, requests_per_minute: float | None, tokens_per_minute: float | None):
        self.buckets = []
        for per_minute in (requests_per_minute, tokens_per_minute):
            if per_minute:
                rate = per_minute / 60.0
                self.buckets.append({"rate": rate, "capacity": max(1.0, rate), "level": max(1.0, rate), "at": time.monotonic()})
            else:
                self.buckets.append(None)
        self.lock = asyncio.Lock()

    async def acquire(self, tokens: int) -> None:
        if self.buckets == [None, None]:
            return
        async with self.lock:  # first come, first served
            while True:
                now = time.monotonic()
                wait = 0.0
                for bucket, need in zip(self.buckets, (1.0, float(tokens))):
                    if bucket is None:
                        continue
                    bucket["level"] = min(bucket["capacity"], bucket["level"] + (now - bucket["at"]) * bucket["rate"])
                    bucket["at"] = now
                    need = min(need, bucket["capacity"])  # a request bigger than the burst waits for a full bucket
                    if bucket["level"] < need:
                        wait = max(wait, (need - bucket["level"]) / bucket["rate"])
                if wait <= 0:
                    for bucket, need in zip(self.buckets, (1.0, float(tokens))):
                        if bucket is not None:
                            bucket["level"] -= min(need, bucket["capacity"])
                    return
                await asyncio.sleep(wait)


class CircuitBreaker:
    """Opens after `failures` consecutive server faults: requests wait, then one probe goes through.

    Each failed probe doubles the pause. When the pauses add up to `give_up_s` with no success, the
    breaker is dead and every request still waiting is answered `server_unavailable`.
    """

    def __init__(self, failures: int, pause_s: float, give_up_s: float):
        self.threshold, self.pause_s, self.give_up_s = failures, pause_s, give_up_s
        self.consecutive = 0
        self.open_until = 0.0
        self.paused_total = 0.0
        self.next_pause = pause_s
        self.probing = False
        self.dead = False
        self.opened = 0  # times it opened

    async def wait_turn(self) -> bool:
        """Wait until a request may go; False when the breaker is dead."""
        while True:
            if self.dead:
                return False
            now = time.monotonic()
            if self.consecutive < self.threshold:
                return True
            if now < self.open_until or self.probing:
                await asyncio.sleep(max(0.01, min(self.open_until - now, 0.25)))
                continue
            self.probing = True  # half open: this request is the probe
            return True

    def success(self) -> None:
        self.consecutive = 0
        self.probing = False
        self.paused_total = 0.0
        self.next_pause = self.pause_s

    def failure(self) -> None:
        self.consecutive += 1
        was_probe, self.probing = self.probing, False
        if self.consecutive >= self.threshold and (was_probe or self.consecutive == self.threshold):
            if self.paused_total >= self.give_up_s:
                self.dead = True
                return
            pause = min(self.next_pause, self.give_up_s - self.paused_total)
            self.open_until = time.monotonic() + pause
            self.paused_total += pause
            self.next_pause *= 2
            self.opened += 1


@dataclass
class Budget:
    """A cost cap: a request goes only if the spent cost plus the worst case of those in flight plus its own fits."""

    cap: float | None = None
    spent: float = 0.0
    reserved: float = 0.0
    in_flight: int = 0
    exhausted: bool = False

    async def reserve(self, worst_case: float) -> bool:
        if self.cap is None:
            return True
        while True:
            if self.exhausted:
                return False
            if self.spent + self.reserved + worst_case <= self.cap:
                self.reserved += worst_case
                self.in_flight += 1
                return True
            if self.in_flight == 0:  # nothing will come back to free room: the cap is reached
                self.exhausted = True
                return False
            await asyncio.sleep(0.01)

    def settle(self, worst_case: float, actual: float) -> None:
        self.spent += actual
        if self.cap is not None:
            self.reserved -= worst_case
            self.in_flight -= 1


class RemoteBackend(Backend):
    """A model behind an HTTP API. Subclasses implement `_complete` (one request) and `_client`."""

    default_key_env: str = ""
    default_base_url_env: str = ""
    sdk_package: str = ""

    def __init__(self, spec: ModelSpec, *, base_dir: Path | None = None):
        super().__init__(spec, base_dir=base_dir)
        self.server = spec.server
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client_obj: Any = None
        self.budget = Budget()
        self.cost_usd = 0.0
        self._check_sdk()

    # identity and pricing --------------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        return self.spec.name

    def identity(self) -> dict[str, Any]:
        # the server's address is not part of the identity: the same model behind another URL answers the same
        return {"backend": self.name, "model": self.model_id, "sha256": None}

    @property
    def price(self) -> tuple[float, float] | None:
        """USD per million (input, output) tokens, or None when unknown."""
        if self.spec.price is not None:
            return self.spec.price.input, self.spec.price.output
        name = self.spec.name
        if name in PRICES:
            return PRICES[name]
        base = max((k for k in PRICES if name.startswith(k)), key=len, default=None)  # dated snapshots
        return PRICES[base] if base else None

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        price = self.price
        if price is None:
            return 0.0
        return (prompt_tokens * price[0] + completion_tokens * price[1]) / 1e6

    @property
    def preferred_batch_size(self) -> int:
        """Rows per runner batch: enough to keep every concurrency slot busy between commits."""
        return max(32, 4 * self.server.concurrency)

    def set_budget(self, cap: float | None) -> None:
        if cap is not None and self.price is None:
            raise BackendError(
                f"--max-cost needs a price for model {self.spec.name!r}, which is not in labelmill's price table",
                fix="set model.price: {input: USD per million prompt tokens, output: USD per million completion tokens}",
            )
        self.budget = Budget(cap=cap)

    # the SDK and the event loop ---------------------------------------------------------------------
    def _check_sdk(self) -> None:
        try:
            __import__(self.sdk_package)
        except ImportError:
            raise BackendError(
                f"backend {self.name!r} needs the {self.sdk_package} package", fix=f"pip install 'labelmill[{self.name}]'"
            ) from None

    def api_key(self) -> str | None:
        if self.server.api_key:
            return self.server.api_key
        env = self.server.api_key_env or self.default_key_env
        value = os.environ.get(env)
        if self.server.api_key_env and not value:
            raise BackendError(f"environment variable {env} (model.server.api_key_env) is not set", fix=f"export {env}=YOUR_KEY")
        return value

    def base_url(self) -> str | None:
        return self.server.base_url or os.environ.get(self.default_base_url_env) or None

    @abstractmethod
    def _make_client(self) -> Any: ...

    def _submit(self, coro) -> concurrent.futures.Future:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, name=f"labelmill-{self.name}", daemon=True)
            self._thread.start()
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def _run(self, coro):
        return self._submit(coro).result()

    async def _client(self) -> Any:
        if self._client_obj is None:
            self._client_obj = self._make_client()
            self._limiter = RateLimiter(self.server.requests_per_minute, self.server.tokens_per_minute)
            self._slots = asyncio.Semaphore(self.server.concurrency)
            self._breaker = CircuitBreaker(self.server.breaker_failures, self.server.breaker_pause_s, self.server.breaker_give_up_s)
        return self._client_obj

    def close(self) -> None:
        if self._loop is None:
            return
        if self._client_obj is not None and hasattr(self._client_obj, "close"):
            try:
                self._run(self._client_obj.close())
            except Exception:  # noqa: BLE001, S110 - closing must not mask the run's own outcome
                pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._loop.close()
        self._loop = None

    # requests ---------------------------------------------------------------------------------------
    def generate(
        self, prompts: Sequence[Prompt], *, max_tokens: int, temperature: float, seed: int, schema: dict | None = None
    ) -> list[Generation]:
        return self.submit_generate(prompts, max_tokens=max_tokens, temperature=temperature, seed=seed, schema=schema).result()

    def submit_generate(
        self, prompts: Sequence[Prompt], *, max_tokens: int, temperature: float, seed: int, schema: dict | None = None
    ) -> concurrent.futures.Future:
        """Start the requests in the background; the future's result is one Generation per prompt, in order."""

        async def batch() -> list[Generation]:
            await self._client()
            return await asyncio.gather(*(self._one(p, max_tokens, temperature, seed, schema) for p in prompts))

        return self._submit(batch())

    async def _one(self, prompt: Prompt, max_tokens: int, temperature: float, seed: int, schema: dict | None) -> Generation:
        # a token estimate only where something needs it (the cost cap, a token rate limit)
        needs_estimate = self.budget.cap is not None or self.server.tokens_per_minute is not None
        estimate = self.count_tokens(prompt.canonical()) if needs_estimate else 0
        worst_case = self.cost(estimate, max_tokens) if self.budget.cap is not None else 0.0
        async with self._slots:
            if not await self.budget.reserve(worst_case):
                return Generation(text="", error="budget_exhausted", error_detail="the --max-cost cap is reached")
            actual = 0.0
            try:
                result = await self._with_retries(prompt, max_tokens, temperature, seed, schema, estimate)
                if result.error is None:
                    prompt_tokens = result.prompt_tokens or estimate or self.count_tokens(prompt.canonical())
                    actual = self.cost(prompt_tokens, result.completion_tokens)
                    self.cost_usd += actual
                    result.cost_usd = actual
                return result
            finally:
                self.budget.settle(worst_case, actual)

    async def _with_retries(self, prompt: Prompt, max_tokens: int, temperature: float, seed: int, schema: dict | None, estimate: int) -> Generation:
        attempt = 0
        while True:
            if not await self._breaker.wait_turn():
                return Generation(text="", error="server_unavailable", error_detail="the server kept failing; the circuit breaker gave up")
            await self._limiter.acquire(estimate + max_tokens)
            started = time.perf_counter()
            try:  # the SDK client enforces server.timeout_s
                result = await self._complete(prompt, max_tokens=max_tokens, temperature=temperature, seed=seed, schema=schema)
            except TimeoutError:
                failure = RequestFailed("timeout", f"no answer within {self.server.timeout_s:g} s", retry=True, server_fault=True)
            except RequestFailed as exc:
                failure = exc
            except Exception as exc:  # noqa: BLE001 - any SDK error becomes a typed, retried failure
                failure = self._classify(exc)
            else:
                self._breaker.success()
                result.latency_s = time.perf_counter() - started
                return result
            if failure.server_fault:
                self._breaker.failure()
            if not failure.retry or attempt >= self.server.max_retries:
                return Generation(text="", error=failure.kind, error_detail=failure.detail[:300])
            attempt += 1
            delay = failure.retry_after
            if delay is None:
                delay = min(30.0, self.server.backoff_s * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
            await asyncio.sleep(min(delay, 120.0))

    def _classify(self, exc: Exception) -> RequestFailed:
        """An exception from the SDK as a typed, retryable-or-not failure."""
        status = getattr(exc, "status_code", None)
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None) or {}
        retry_after = parse_retry_after(headers.get("retry-after") if hasattr(headers, "get") else None)
        text = f"{type(exc).__name__}: {exc}"
        name = type(exc).__name__
        if "Timeout" in name:
            return RequestFailed("timeout", text, retry=True, server_fault=True)
        if status == 429:
            return RequestFailed("rate_limited", text, retry=True, retry_after=retry_after)
        if status is not None and (status >= 500 or status in (408, 409)):
            return RequestFailed("server_error", text, retry=True, retry_after=retry_after, server_fault=True)
        if status is not None:
            return RequestFailed("request_rejected", text, retry=False)
        if "Connection" in name:
            return RequestFailed("connection_error", text, retry=True, server_fault=True)
        if isinstance(exc, TypeError):  # a call the SDK does not accept: retrying will not help
            return RequestFailed("request_rejected", text, retry=False)
        if isinstance(exc, (json.JSONDecodeError, KeyError, IndexError, ValueError)) or "Validation" in name or "Decode" in name:
            return RequestFailed("malformed_response", text, retry=True)
        return RequestFailed("connection_error", text, retry=True, server_fault=True)

    @abstractmethod
    async def _complete(self, prompt: Prompt, *, max_tokens: int, temperature: float, seed: int, schema: dict | None) -> Generation:
        """Send one request; return its Generation or raise (SDK errors are classified by `_classify`)."""
