"""A deterministic keyword model for tests and dry runs, registered like any other backend.

params:
  keywords: {label: [word, ...]}  words that vote for a label (default: the label's own name)
  labels: [..]                    labels it may answer when generating (default: read from the prompt)
  style: plain | chatty           'positive' or 'The answer is: Positive.'
  garbage_every: N                every Nth distinct prompt gets an unparseable answer
  delay_s: float                  sleep per batch (simulates a slow model)
  load_s: float                   sleep once when made (simulates loading a model)
  call_log: path                  append one line per prompt sent (counts model calls across processes)
  replies: [[regex, text], ...]   generate: the text of the first regex found in the prompt's last user
                                  message ({0}, {1}.. are its groups), for tasks that answer in free form
  default_reply: text             generate: the answer when no reply matches
  (generate with temperature > 0 samples the label from softmax(logprobs / T), seeded by seed and prompt)
  follow_demos: true              score: a row with no keyword takes the answer of the few-shot demo that
                                  shares the most words with it (so demos change answers, as they do for an LLM)
  rule_words: true                score: a guideline rule of the form "'WORD' means LABEL" in the system prompt makes
                                  WORD vote for LABEL (so a written rule changes answers, as it does for an LLM)
  by_model: {NAME: {param: ..}}   these params instead when the config's model name is NAME (a "stronger" fake
                                  model for cascades and the review loop's tier)
  crash_marker: path              the process dies (os._exit) when asked its `crash_after` + 1st prompt, once:
  crash_after: N                  the marker file, created just before, keeps every later process alive
                                  (a worker killed mid-shard, for the Ray retry tests)
  cost_usd: float                 generate: what each answer is billed, as a paid API reports it (budget tests)
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import re
import time
from collections.abc import Sequence

from labelmill.types import Generation, Prompt, ScoreResult
from labelmill.backends.base import Backend

_WORD = re.compile(r"[a-z0-9']+")


class FakeBackend(Backend):
    name = "fake"
    can_score = True
    has_logprobs = True

    def __init__(self, spec, *, base_dir=None):
        super().__init__(spec, base_dir=base_dir)
        if float(spec.params.get("load_s", 0)):
            time.sleep(float(spec.params["load_s"]))

    @property
    def model_id(self) -> str:
        return f"fake-keywords:{self.spec.name}" if self.spec.name in self.spec.params.get("by_model", {}) else "fake-keywords"

    @property
    def model_sha256(self) -> str:
        return hashlib.sha256(repr(sorted(self._keywords.items())).encode()).hexdigest()

    @property
    def _keywords(self) -> dict[str, list[str]]:
        """The keywords of the model the config names (`by_model`), else the params' own."""
        return self.spec.params.get("by_model", {}).get(self.spec.name, {}).get("keywords", self.spec.params.get("keywords", {}))

    def _votes(self, text: str, label: str, rules: dict[str, list[str]] | None = None) -> float:
        words = set(_WORD.findall(text.lower()))
        keywords = list(self._keywords.get(label, [label.lower()])) + list((rules or {}).get(label, []))
        return sum(1.0 for k in keywords if k.lower() in words)

    def _rules(self, system: str) -> dict[str, list[str]]:
        """With rule_words: "'WORD' means LABEL" lines of the guideline, as label -> [word]."""
        if not self.spec.params.get("rule_words"):
            return {}
        out: dict[str, list[str]] = {}
        for word, label in re.findall(r"'([^']+)' means ([^\s.,;]+)", system):
            out.setdefault(label, []).append(word)
        return out

    def _logprobs(self, text: str, candidates: Sequence[str], rules: dict[str, list[str]] | None = None) -> list[float]:
        raw = [3.0 * self._votes(text, c, rules) - 0.01 * i for i, c in enumerate(candidates)]
        top = max(raw)
        log_z = top + math.log(sum(math.exp(r - top) for r in raw))
        return [r - log_z for r in raw]

    def _log_calls(self, prompts: Sequence[Prompt]) -> None:
        self._maybe_crash(len(prompts))
        delay = float(self.spec.params.get("delay_s", 0))
        if delay:
            time.sleep(delay)
        log = self.spec.params.get("call_log")
        if log:
            with open(log, "a", encoding="utf-8") as fh:
                fh.writelines(p.hash() + "\n" for p in prompts)

    def _maybe_crash(self, asked: int) -> None:
        marker = self.spec.params.get("crash_marker")
        if not marker:
            return
        self._asked = getattr(self, "_asked", 0) + asked
        if self._asked > int(self.spec.params.get("crash_after", 0)) and not os.path.exists(marker):
            with open(marker, "w", encoding="utf-8") as fh:
                fh.write(str(os.getpid()))
            os._exit(17)

    def _scripted(self, prompt: Prompt) -> str | None:
        for pattern, reply in self.spec.params.get("replies", []):
            match = re.search(pattern, prompt.user)
            if match:
                return reply.format(*match.groups()) if match.groups() else reply
        return self.spec.params.get("default_reply")

    def _demo_vote(self, prompt: Prompt, candidates: Sequence[str]) -> list[float] | None:
        """With follow_demos, a row without keywords answers like its most similar demo."""
        if not self.spec.params.get("follow_demos") or not prompt.turns or any(self._votes(prompt.user, c) for c in candidates):
            return None
        words = set(_WORD.findall(prompt.user.lower()))
        overlap = [len(words & set(_WORD.findall(user.lower()))) for user, _ in prompt.turns]
        best = prompt.turns[max(range(len(overlap)), key=lambda i: (overlap[i], i))][1]
        if max(overlap) == 0 or best not in candidates:
            return None
        raw = [2.0 if c == best else 0.0 for c in candidates]
        log_z = math.log(sum(math.exp(r) for r in raw))
        return [r - log_z for r in raw]

    def score(self, prompts: Sequence[Prompt], candidates: Sequence[str]) -> list[ScoreResult]:
        self._log_calls(prompts)
        return [
            ScoreResult(self._demo_vote(p, candidates) or self._logprobs(p.user, candidates, self._rules(p.system)), prompt_tokens=self.count_tokens(p.canonical()))
            for p in prompts
        ]

    def generate(self, prompts: Sequence[Prompt], *, max_tokens: int, temperature: float, seed: int, schema: dict | None = None) -> list[Generation]:
        self._log_calls(prompts)
        out = []
        every = int(self.spec.params.get("garbage_every", 0))
        cost = float(self.spec.params.get("cost_usd", 0.0))
        for prompt in prompts:
            scripted = self._scripted(prompt)
            if scripted is not None:
                pieces = re.findall(r"\S+|\s+", scripted)
                out.append(Generation(scripted, [-0.1] * len(pieces), completion_tokens=len(pieces), tokens=pieces, cost_usd=cost))
                continue
            labels = self.spec.params.get("labels") or re.findall(r"^- ([^:\n]+)", prompt.system, flags=re.MULTILINE)
            if every and int(prompt.hash(), 16) % every == 0:
                text, logprobs = "I am not sure about this one.", [-2.0] * 7
            else:
                logprobs = self._logprobs(prompt.user, labels)
                best = max(range(len(labels)), key=lambda i: logprobs[i])
                if temperature > 0:  # sampled like a model: from softmax(logprobs / T), seeded by (seed, prompt)
                    rng = random.Random(f"{seed}:{prompt.hash()}")
                    weights = [math.exp((lp - logprobs[best]) / temperature) for lp in logprobs]
                    best = rng.choices(range(len(labels)), weights=weights)[0]
                label = labels[best]
                text = f"The answer is: {label.capitalize()}." if self.spec.params.get("style") == "chatty" else label
                logprobs = [logprobs[best]]
            out.append(Generation(text, logprobs, prompt_tokens=self.count_tokens(prompt.canonical()), completion_tokens=len(logprobs), cost_usd=cost))
        return out
