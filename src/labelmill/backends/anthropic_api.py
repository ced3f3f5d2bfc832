"""Anthropic's Messages API through the official SDK.

model:
  backend: anthropic
  name: claude-haiku-4-5
  server:
    api_key_env: ANTHROPIC_API_KEY
    concurrency: 8
    requests_per_minute: 50

Temperature is sent only when the config sets one above 0 (current models take no sampling
parameters). The API gives no token log-probabilities, so labels carry no model confidence from this backend
(self-consistency and P(True) work without them). Retries, the circuit breaker and the cost cap are
the shared ones in `remote.py`.
"""

from __future__ import annotations

from typing import Any

from labelmill.types import Generation, Prompt
from labelmill.backends.remote import RemoteBackend, RequestFailed, aiohttp_client


class AnthropicBackend(RemoteBackend):
    name = "anthropic"
    default_key_env = "ANTHROPIC_API_KEY"
    default_base_url_env = "ANTHROPIC_BASE_URL"
    sdk_package = "anthropic"

    def _make_client(self) -> Any:
        import anthropic

        return anthropic.AsyncAnthropic(
            api_key=self.api_key() or "not-needed",
            base_url=self.base_url(),
            default_headers=self.server.headers or None,
            timeout=self.server.timeout_s,
            max_retries=0,
            http_client=aiohttp_client(anthropic),
        )

    async def _complete(self, prompt: Prompt, *, max_tokens: int, temperature: float, seed: int, schema: dict | None) -> Generation:
        client = await self._client()
        messages = []
        for user, assistant in prompt.turns:
            messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
        messages.append({"role": "user", "content": prompt.user})
        body: dict[str, Any] = {"model": self.spec.name, "max_tokens": max_tokens, "messages": messages}
        if temperature > 0:  # current models take no sampling parameters; send one only when the config asks
            body["temperature"] = temperature
        if prompt.system:
            body["system"] = prompt.system
        # the SDK's low-level post (auth, version header, typed errors) without typed request/response objects
        response = await client.post("/v1/messages", cast_to=object, body=body)
        blocks = response.get("content") if isinstance(response, dict) else None
        if not isinstance(blocks, list):
            raise RequestFailed("malformed_response", f"no content in the answer: {str(response)[:200]}", retry=True)
        text = "".join(b.get("text", "") for b in blocks if isinstance(b, dict) and b.get("type", "text") == "text")
        usage = response.get("usage") or {}
        return Generation(
            text=text.strip(),
            prompt_tokens=int(usage.get("input_tokens") or 0),
            completion_tokens=int(usage.get("output_tokens") or 0),
        )
