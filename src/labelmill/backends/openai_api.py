"""OpenAI and OpenAI-compatible servers (vLLM, SGLang, Ollama, llama.cpp server) through the official SDK.

model:
  backend: openai
  name: gpt-4o-mini                       # the server's model name
  server:
    base_url: http://127.0.0.1:8080/v1    # default: OPENAI_BASE_URL, else api.openai.com
    api_key_env: OPENAI_API_KEY           # local servers accept any key
    endpoint: chat                        # or completions
    concurrency: 16

Token log-probabilities are asked for (`server.logprobs`) and become confidences; the task's JSON
schema goes out as `response_format` (`server.json_schema`). The SDK's own retries are off: the
shared retry loop in `remote.py` handles them, with the circuit breaker and the cost cap.
"""

from __future__ import annotations

from typing import Any

from labelmill.types import Generation, Prompt
from labelmill.backends.remote import RemoteBackend, RequestFailed, aiohttp_client

TOP_LOGPROBS = 20


class OpenAIBackend(RemoteBackend):
    name = "openai"
    has_logprobs = True
    supports_schema = True
    default_key_env = "OPENAI_API_KEY"
    default_base_url_env = "OPENAI_BASE_URL"
    sdk_package = "openai"

    def _make_client(self) -> Any:
        import openai

        return openai.AsyncOpenAI(
            api_key=self.api_key() or "not-needed",  # local servers take any key; the SDK insists on one
            base_url=self.base_url(),
            default_headers=self.server.headers or None,
            timeout=self.server.timeout_s,
            max_retries=0,
            http_client=aiohttp_client(openai),
        )

    def render(self, prompt: Prompt) -> str:
        if self.server.endpoint == "completions":
            return completion_text(prompt)
        return super().render(prompt)

    async def _complete(self, prompt: Prompt, *, max_tokens: int, temperature: float, seed: int, schema: dict | None) -> Generation:
        # The SDK's low-level post: its auth, headers, base URL and typed errors, without building typed
        # request and response objects (a few ms of CPU per request, the limit at hundreds of requests/s).
        client = await self._client()
        body: dict[str, Any] = {"model": self.spec.name, "max_tokens": max_tokens, "temperature": temperature, "seed": seed}
        if self.server.endpoint == "completions":
            body.update(prompt=completion_text(prompt), stop=["\nUser:"])
            if self.server.logprobs:
                body["logprobs"] = 5
            return _from_completion(await client.post("/completions", cast_to=object, body=body))
        body["messages"] = prompt.messages()
        if self.server.logprobs:
            body.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
        if schema and self.server.json_schema:
            body["response_format"] = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
        return _from_chat(await client.post("/chat/completions", cast_to=object, body=body))


def completion_text(prompt: Prompt) -> str:
    """A chat prompt as plain text for the /completions endpoint."""
    parts = [prompt.system] if prompt.system else []
    for user, assistant in prompt.turns:
        parts += [f"User: {user}", f"Assistant: {assistant}"]
    parts += [f"User: {prompt.user}", "Assistant:"]
    return "\n".join(parts)


def _generation(raw: str, tokens: list[str], logprobs: list[float], top: dict[str, float], response: dict) -> Generation:
    if tokens and "".join(tokens) != raw:  # a server whose token texts do not add up: keep the text, drop the tokens
        tokens = []
    stripped = raw.lstrip()
    usage = response.get("usage") or {}
    return Generation(
        text=stripped.rstrip(),
        token_logprobs=logprobs,
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0) or len(logprobs),
        tokens=tokens,
        lead=len(raw) - len(stripped) if tokens else 0,
        top_logprobs=top,
    )


def _choice(response: Any) -> dict:
    choices = response.get("choices") if isinstance(response, dict) else None
    if not choices or not isinstance(choices[0], dict):
        raise RequestFailed("malformed_response", f"no choices in the answer: {str(response)[:200]}", retry=True)
    return choices[0]


def _from_chat(response: Any) -> Generation:
    choice = _choice(response)
    message = choice.get("message")
    if not isinstance(message, dict):
        raise RequestFailed("malformed_response", f"no message in the answer: {str(response)[:200]}", retry=True)
    raw = message.get("content") or ""
    content = (choice.get("logprobs") or {}).get("content") or []
    tokens = [c["token"] for c in content]
    logprobs = [float(c["logprob"]) for c in content]
    top = {t["token"]: float(t["logprob"]) for t in (content[0].get("top_logprobs") or [])} if content else {}
    return _generation(raw, tokens, logprobs, top, response)


def _from_completion(response: Any) -> Generation:
    choice = _choice(response)
    raw = choice.get("text") or ""
    lp = choice.get("logprobs") or {}
    tokens = list(lp.get("tokens") or [])
    logprobs = [float(x) for x in (lp.get("token_logprobs") or []) if x is not None]
    tops = lp.get("top_logprobs") or []
    top = {k: float(v) for k, v in (tops[0] or {}).items()} if tops else {}
    if len(logprobs) != len(tokens):
        tokens, logprobs = [], []
    return _generation(raw, tokens, logprobs, top, response)
