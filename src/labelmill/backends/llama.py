"""The embedded model: llama.cpp in-process, through llama-cpp-python's low-level bindings.

Fast by construction:
- the prompt prefix shared by all rows (guidelines + demos) is evaluated once and kept in KV sequence 0;
- many rows are evaluated together in one forward pass, each in its own KV sequence that shares the
  prefix cells (unified KV cache), so the batch rate applies to the rows' own tokens; rows are taken in sorted
  order, so a prefix some of them share beyond that (the same first demos) is evaluated once for them all;
- a closed label set is scored exactly: log P(label tokens | prompt), reading the logits after the
  last prompt token and, for labels longer than one token, decoding their continuations as a trie (the tries
  of several rows in one forward pass, each label path in a sequence of its own). Opt-in
  (`model.params: {skip_mass: 0.001}`): the likeliest first tokens first, and the subtrees whose first
  tokens together hold at most that share of the probability already scored are not decoded (each of their
  labels keeps an equal share of its first token's probability, a bound on it), so a large label set
  (Banking77's 77 intents) costs the continuations of the labels that can win, within that share of exact.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from labelmill.errors import BackendError, MissingDependencyError
from labelmill.models import ResolvedModel, resolve_model
from labelmill.types import Generation, Prompt, ScoreResult
from labelmill.backends.base import Backend

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _import_llama_cpp():
    try:
        import llama_cpp
        from llama_cpp import _internals, _logger
    except ImportError:
        raise MissingDependencyError("llama-cpp-python", "local", "the embedded model") from None
    _logger.set_verbose(False)  # llama.cpp's own log lines are not ours to print
    return llama_cpp, _internals


@dataclass
class _Row:
    """One prompt's tokens beyond the shared prefix, and where its logits land."""

    tokens: list[int]
    slot: int = -1
    out_index: int = -1
    logprobs: np.ndarray | None = None
    rng: np.random.Generator | None = None  # sampling: seeded by (seed, the prompt), so a row samples alike in any batch


@dataclass
class _TrieNode:
    token: int
    depth: int  # 0 = first continuation token
    children: dict[int, _TrieNode] = field(default_factory=dict)
    candidates: list[int] = field(default_factory=list)  # candidates whose token path runs through here


class _Engine:
    """A loaded model and one context with many KV sequences. Not thread-safe: callers hold `lock`."""

    def __init__(self, resolved: ResolvedModel, *, n_ctx: int, n_batch: int, n_seq: int, n_threads: int, seed: int):
        llama_cpp, internals = _import_llama_cpp()
        self.llama_cpp = llama_cpp
        llama_cpp.llama_backend_init()
        model_params = llama_cpp.llama_model_default_params()
        try:
            self.model = internals.LlamaModel(path_model=str(resolved.path), params=model_params, verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise BackendError(f"llama.cpp cannot load {resolved.path}: {exc}", fix="check that the file is a valid GGUF model") from None
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = n_batch
        params.n_ubatch = n_batch
        # rows use sequences 1..n_seq-1; label continuations take more, up to the most llama.cpp allows
        self.n_slots = max(n_seq, MAX_SEQUENCES)
        params.n_seq_max = self.n_slots
        params.kv_unified = True
        params.n_threads = n_threads
        params.n_threads_batch = n_threads
        params.no_perf = True
        self.ctx = internals.LlamaContext(model=self.model, params=params, verbose=False)
        self.memory = llama_cpp.llama_get_memory(self.ctx.ctx)
        self.n_ctx = n_ctx
        self.n_batch = n_batch
        self.score_cells = 2 * n_batch  # KV cells a scoring group's own tokens may hold (`_score_groups`)
        self.n_seq = n_seq
        self.n_vocab = self.model.n_vocab()
        self.batch = llama_cpp.llama_batch_init(n_batch, 0, self.n_slots)
        self.prefix: list[int] = []  # tokens held in KV sequence 0
        self.tokens_evaluated = 0  # every token sent through llama_decode (what prefix reuse saves shows here)
        self.lock = threading.Lock()
        self.rng = np.random.default_rng(seed)
        self.add_bos = self.model.add_bos_token()
        metadata = self.model.metadata()
        self.chat_template = metadata.get("tokenizer.chat_template") or CHATML
        self._formatter = None

    # text <-> tokens --------------------------------------------------------------------------
    def tokenize(self, text: str, *, add_bos: bool, special: bool = True) -> list[int]:
        data = text.encode("utf-8")
        size = len(data) + 16
        buf = (self.llama_cpp.llama_token * size)()
        n = self.llama_cpp.llama_tokenize(self.model.vocab, data, len(data), buf, size, add_bos, special)
        if n < 0:
            raise BackendError(f"cannot tokenize a text of {len(data)} bytes", fix="report this input as a bug")
        return list(buf[:n])

    def piece(self, token: int, special: bool = False) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = self.llama_cpp.llama_token_to_piece(self.model.vocab, token, buf, len(buf), 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self.llama_cpp.llama_token_to_piece(self.model.vocab, token, buf, len(buf), 0, special)
        return buf.raw[:n]

    def render(self, prompt: Prompt) -> str:
        if self._formatter is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            eos = self.piece(self.model.token_eos(), True).decode("utf-8", "replace") if self.model.token_eos() >= 0 else ""
            bos = self.piece(self.model.token_bos(), True).decode("utf-8", "replace") if self.model.token_bos() >= 0 else ""
            self._formatter = Jinja2ChatFormatter(template=self.chat_template, eos_token=eos, bos_token=bos)
        return self._formatter(messages=prompt.messages()).prompt

    def prompt_tokens(self, prompt: Prompt) -> list[int]:
        text = self.render(prompt)
        bos_text = self.piece(self.model.token_bos(), True).decode("utf-8", "replace") if self.model.token_bos() >= 0 else ""
        bos = self.add_bos and not (bos_text and text.startswith(bos_text))
        return self.tokenize(text, add_bos=bos)

    # KV sequences -----------------------------------------------------------------------------
    def _seq_rm(self, seq: int, p0: int = -1) -> None:
        self.llama_cpp.llama_memory_seq_rm(self.memory, seq, p0, -1)

    def _seq_cp(self, src: int, dst: int) -> None:
        self.llama_cpp.llama_memory_seq_cp(self.memory, src, dst, -1, -1)

    def _decode(self, entries: list[tuple[int, int, Sequence[int], bool]]) -> None:
        """One llama_decode over (token, position, seq ids, wants logits) entries."""
        batch = self.batch
        for i, (token, pos, seqs, logits) in enumerate(entries):
            batch.token[i] = token
            batch.pos[i] = pos
            batch.n_seq_id[i] = len(seqs)
            for j, seq in enumerate(seqs):
                batch.seq_id[i][j] = seq
            batch.logits[i] = logits
        batch.n_tokens = len(entries)
        self.tokens_evaluated += len(entries)
        status = self.llama_cpp.llama_decode(self.ctx.ctx, batch)
        if status != 0:
            raise BackendError(
                f"llama_decode failed with status {status} (KV cache full?)",
                fix="raise model.n_ctx or lower model.batch_size in the config",
            )

    def _logprobs_at(self, index: int) -> np.ndarray:
        ptr = self.llama_cpp.llama_get_logits_ith(self.ctx.ctx, index)
        logits = np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).astype(np.float64)
        from scipy.special import log_softmax

        return log_softmax(logits)

    def set_prefix(self, tokens: list[int]) -> None:
        """Hold `tokens` in sequence 0, re-evaluating only the part that differs from what is there."""
        keep = 0
        for a, b in zip(self.prefix, tokens):
            if a != b:
                break
            keep += 1
        if keep < len(self.prefix):
            self._seq_rm(0, keep)
        rest = tokens[keep:]
        for start in range(0, len(rest), self.n_batch):
            chunk = rest[start : start + self.n_batch]
            self._decode([(t, keep + start + i, (0,), False) for i, t in enumerate(chunk)])
        self.prefix = list(tokens)

    def _clear_slots(self, slots: Sequence[int]) -> None:
        for slot in slots:
            self._seq_rm(slot)

    def _row_groups(self, rows: list[_Row], start: int, max_rows: int):
        """Yield groups of rows evaluated together, each in its own sequence, with row.logprobs set.

        Each row is at most a batch long (`forward_seconds` cuts longer lists); the caller frees the group's slots
        before asking for the next group.
        """
        pending = deque(rows)
        while pending:
            group: list[_Row] = []
            n_tokens = 0
            while pending and len(group) < max_rows and n_tokens + len(pending[0].tokens) <= self.n_batch:
                row = pending.popleft()
                group.append(row)
                n_tokens += len(row.tokens)
            entries: list[tuple[int, int, Sequence[int], bool]] = []
            for slot, row in enumerate(group, start=1):
                row.slot = slot
                self._seq_cp(0, slot)
                for i, token in enumerate(row.tokens):
                    last = i == len(row.tokens) - 1
                    if last:
                        row.out_index = len(entries)
                    entries.append((token, start + i, (slot,), last))
            self._decode(entries)
            for row in group:
                row.logprobs = self._logprobs_at(row.out_index)
            yield group

    # scoring ----------------------------------------------------------------------------------
    def score(self, token_lists: list[list[int]], candidates: list[list[int]], skip_mass: float = 0.0) -> list[list[float]]:
        """log P(candidate tokens | prompt tokens) for every prompt and candidate (`skip_mass`: see
        `_score_continuations`; 0 decodes every candidate). Rows are evaluated in sorted order, so a prefix some of
        them share (the same first demos) is evaluated once for them all, as in generation (`_prefill`)."""
        shared = common_prefix(token_lists)
        self.set_prefix(token_lists[0][:shared])
        trie = _build_trie(candidates)
        results: list[list[float]] = [[] for _ in token_lists]
        rows = [_Row(tokens=t[shared:]) for t in token_lists]
        order = sorted(range(len(rows)), key=lambda i: rows[i].tokens)
        trie_cells = max(_trie_size(trie), self.n_batch) if trie else 0  # the continuations' cells at once (`_decode_units`)
        max_rows = min(self.n_seq - 1, (self.n_slots - 1) // 2) if trie else self.n_seq - 1  # sequences left for label paths
        for group in self._score_groups(order, rows, shared, max_rows, trie_cells):
            members = [rows[i] for i in group]
            try:
                self._prefill(members, shared)
                scores = [[float(row.logprobs[c[0]]) for c in candidates] for row in members]
                if trie:
                    free = list(range(len(group) + 1, self.n_slots))
                    self._score_continuations(members, [shared + len(r.tokens) for r in members], trie, candidates, scores, free, skip_mass)
                for i, row_scores in zip(group, scores):
                    results[i] = row_scores
            finally:  # a failed decode leaves no half-filled sequence for the engine's next call
                self._clear_slots(range(1, len(group) + 1))
        return results

    def _score_groups(self, order: list[int], rows: list[_Row], start: int, max_rows: int, trie_cells: int):
        """The rows (indices in sorted `order`) evaluated together: at most `max_rows`, and at most `score_cells` KV
        cells for their tokens beyond what the group shares with the row before (every cell of the cache takes
        part in each decode's attention, so a group costs more a token the more cells it holds), with room for
        the label continuations (`trie_cells`) in the context. A row longer than that is a group of its own."""
        budget = min(self.score_cells, self.n_ctx - start - trie_cells)
        group: list[int] = []
        used = 0
        before: list[int] | None = None
        for i in order:
            tokens = rows[i].tokens
            own = len(tokens) - (common_prefix([before, tokens]) if group else 0)
            if group and (len(group) >= max_rows or used + own > budget):
                yield group
                group, used, own = [], 0, len(tokens)
            group.append(i)
            used += own
            before = tokens
        if group:
            yield group

    def _score_continuations(
        self, rows: list[_Row], positions: list[int], trie: list[_TrieNode], candidates: list[list[int]], scores: list[list[float]],
        free: list[int], skip_mass: float
    ) -> None:
        """Add log P(token k+1 | ..token k) for candidates longer than one token, for every row of a group (its
        prompt evaluated in `row.slot`, its next position in `positions`): subtrees in order of their first token's
        probability, a few candidates at a time, until the first-token mass of the subtrees left is at most
        `skip_mass` of the exact mass scored so far; each candidate left keeps an equal share of its first token's
        log-probability (an upper bound on the subtree's total). `skip_mass` 0: every subtree at once, exactly.
        The rows' subtrees are decoded together, as many as the sequences and a batch hold (`_decode_units`)."""
        if skip_mass <= 0:
            self._decode_units([(row, pos, trie, row_scores) for row, pos, row_scores in zip(rows, positions, scores)], candidates, free)
            return
        from scipy.special import logsumexp

        roots = [sorted(trie, key=lambda node: -float(row.logprobs[node.token])) for row in rows]
        in_trie = {c for node in trie for c in node.candidates}
        one_token = [[row_scores[c] for c in range(len(candidates)) if c not in in_trie] for row_scores in scores]  # exact already
        decoded: list[list[int]] = [[] for _ in rows]
        done = [0] * len(rows)  # subtrees decoded, per row
        active = list(range(len(rows)))
        while active:
            units = []
            for r in active:
                group = [roots[r][done[r]]]
                done[r] += 1
                while done[r] < len(roots[r]) and sum(len(n.candidates) for n in group) + len(roots[r][done[r]].candidates) <= SKIP_STEP:
                    group.append(roots[r][done[r]])
                    done[r] += 1
                decoded[r] += [c for node in group for c in node.candidates]
                units.append((rows[r], positions[r], group, scores[r]))
            self._decode_units(units, candidates, free)
            still = []
            for r in active:
                left = roots[r][done[r] :]
                if not left:
                    continue
                scored = one_token[r] + [scores[r][c] for c in decoded[r]]
                if logsumexp([float(rows[r].logprobs[n.token]) for n in left]) <= logsumexp(scored) + np.log(skip_mass):
                    for node in left:
                        for c in node.candidates:
                            scores[r][c] -= float(np.log(len(node.candidates)))
                else:
                    still.append(r)
            active = still

    def _decode_units(self, units: list[tuple[_Row, int, list[_TrieNode], list[float]]], candidates: list[list[int]], free: list[int]) -> None:
        """For each (row, next position, subtree roots, the row's scores): add log P(token k+1 | ..token k) for the
        candidates under the roots, decoding each node once. Several rows' subtrees share a decode, each candidate
        of each row in a free sequence of its own (copied from the row's), as many as `free` and a batch hold."""
        pending: deque = deque()
        for row, pos, roots, row_scores in units:
            multi = sorted({c for node in roots for c in node.candidates})
            for chunk_start in range(0, len(multi), len(free)):  # more candidates than sequences: in turns
                pending.append((row, pos, roots, row_scores, multi[chunk_start : chunk_start + len(free)]))
        while pending:
            entries: list[tuple[int, int, Sequence[int], bool]] = []
            where: list[tuple[_TrieNode, int, list[float], dict[int, int]]] = []
            used: list[int] = []
            while pending and len(used) + len(pending[0][4]) <= len(free):
                row, pos, roots, row_scores, chunk = pending[0]
                slot_of = dict(zip(chunk, free[len(used) :]))
                nodes: list[tuple[_TrieNode, list[int]]] = []
                stack = list(roots)
                while stack:
                    node = stack.pop()
                    seqs = [slot_of[c] for c in node.candidates if c in slot_of]
                    if seqs:
                        nodes.append((node, seqs))
                        stack.extend(node.children.values())
                if entries and len(entries) + len(nodes) > self.n_batch:
                    break  # the next decode takes it
                pending.popleft()
                for slot in slot_of.values():
                    self._seq_cp(row.slot, slot)
                used += slot_of.values()
                for node, seqs in nodes:
                    where.append((node, len(entries), row_scores, slot_of))
                    entries.append((node.token, pos + node.depth, seqs, True))
            try:
                for offset in range(0, len(entries), self.n_batch):
                    # one row's subtrees bigger than a batch still work: parents come before children in `entries`
                    self._decode(entries[offset : offset + self.n_batch])
                    for node, index, row_scores, slot_of in where:
                        if offset <= index < offset + self.n_batch:
                            logprobs = self._logprobs_at(index - offset)
                            for c in node.candidates:  # every candidate here continues past this node
                                if c in slot_of:
                                    row_scores[c] += float(logprobs[candidates[c][node.depth + 1]])
            finally:
                self._clear_slots(used)

    # generation -------------------------------------------------------------------------------
    def generate(
        self, token_lists: list[list[int]], *, max_tokens: int, temperature: float, grammar: str | None = None, top_k: int = 20, seed: int = 0
    ) -> list[tuple[list[int], list[float], list[tuple[int, float]]]]:
        """Greedy (or sampled) continuation of every prompt, all rows stepping together.

        Per row: generated tokens, their log-probabilities, and the `top_k` most likely first tokens.
        With `grammar` (GBNF), every row's text is constrained to it.
        """
        shared = common_prefix(token_lists)
        self.set_prefix(token_lists[0][:shared])
        rows = [_Row(tokens=t[shared:]) for t in token_lists]
        if temperature > 0:
            for row, tokens in zip(rows, token_lists):
                row.rng = np.random.default_rng([seed, zlib.crc32(np.asarray(tokens, dtype=np.int64).tobytes())])
        out: list = [None] * len(rows)
        order = sorted(range(len(rows)), key=lambda i: rows[i].tokens)  # rows that begin alike side by side: their prefix once
        for group in self._generation_groups(order, rows, shared, max_tokens):
            try:
                self._prefill([rows[i] for i in group], shared)
            except BaseException:  # a failed decode leaves no half-filled sequence for the engine's next call
                self._clear_slots(range(1, len(group) + 1))
                raise
            for i, result in zip(group, self._generate_group([rows[i] for i in group], shared, max_tokens, temperature, grammar, top_k)):
                out[i] = result
        return out

    def _generation_groups(self, order: list[int], rows: list[_Row], start: int, max_tokens: int):
        """The rows (indices in `order`) that generate together: as many as the sequences and the context hold,
        each with room for `max_tokens`. Every decode step costs about the same for one row or sixty (the weights
        are read once), so the more rows step together, the less each answer costs."""
        group: list[int] = []
        used = start
        for i in order:
            need = len(rows[i].tokens) + max_tokens
            if group and (len(group) >= self.n_seq - 1 or used + need > self.n_ctx):
                yield group
                group, used = [], start
            group.append(i)
            used += need
        if group:
            yield group

    def _prefill(self, group: list[_Row], start: int) -> None:
        """Evaluate each row's own tokens (beyond `start`) in a sequence of its own (slots 1..), in full batches,
        and set row.logprobs. `group` in sorted order: a prefix rows share (the same first demos) is evaluated
        once, its tokens belonging to every sequence that shares it (the nodes of the rows' prefix tree)."""
        for slot, row in enumerate(group, start=1):
            row.slot = slot
            self._seq_cp(0, slot)
        after = [common_prefix([a.tokens, b.tokens]) for a, b in zip(group, group[1:])] + [0]  # shared with the next row
        entries: list[tuple[int, int, Sequence[int], bool]] = []
        last: dict[int, _Row] = {}
        before = 0  # the prefix this row shares with the one before: evaluated there
        for i, row in enumerate(group):
            reach = []  # reach[k]: the prefix row i shares with row i+1+k (the least of the pairs between)
            for lcp in after[i:-1]:
                reach.append(min(lcp, reach[-1]) if reach else lcp)
            for j in range(before, len(row.tokens)):
                while reach and reach[-1] <= j:
                    reach.pop()
                seqs = (row.slot, *(group[i + 1 + k].slot for k in range(len(reach))))
                if j == len(row.tokens) - 1:
                    last[len(entries)] = row
                entries.append((row.tokens[j], start + j, seqs, j == len(row.tokens) - 1))
            before = after[i]
        for offset in range(0, len(entries), self.n_batch):
            self._decode(entries[offset : offset + self.n_batch])
            for index in range(offset, min(offset + self.n_batch, len(entries))):
                if index in last:
                    last[index].logprobs = self._logprobs_at(index - offset)

    def _generate_group(self, group: list[_Row], start: int, max_tokens: int, temperature: float, grammar: str | None, top_k: int):
        texts: list[list[int]] = [[] for _ in group]
        logps: list[list[float]] = [[] for _ in group]
        firsts = []
        for row in group:
            top = np.argpartition(-row.logprobs, top_k)[:top_k]
            top = top[np.argsort(-row.logprobs[top])]
            firsts.append([(int(t), float(row.logprobs[t])) for t in top])
        samplers = [self._grammar_sampler(grammar) for _ in group] if grammar else None
        positions = [start + len(row.tokens) for row in group]
        active = list(range(len(group)))
        dists = {i: group[i].logprobs for i in active}
        try:
            while active:
                entries, still = [], []
                for i in active:
                    if samplers is not None:
                        token = self._pick_constrained(samplers[i], dists[i], temperature, group[i].rng)
                    else:
                        token = self._pick(dists[i], temperature, group[i].rng)
                    if token < 0 or self.llama_cpp.llama_vocab_is_eog(self.model.vocab, token):  # <|im_end|>, <|endoftext|>, ...
                        continue
                    texts[i].append(token)
                    logps[i].append(float(dists[i][token]))
                    if len(texts[i]) >= max_tokens:
                        continue
                    still.append(i)
                    entries.append((token, positions[i], (group[i].slot,), True))
                    positions[i] += 1
                if not entries:
                    break
                self._decode(entries)
                dists = {i: self._logprobs_at(k) for k, i in enumerate(still)}
                active = still
        finally:
            for sampler in samplers or []:
                self.llama_cpp.llama_sampler_free(sampler)
            self._clear_slots([row.slot for row in group])
        return list(zip(texts, logps, firsts))

    def _grammar_sampler(self, grammar: str):
        sampler = self.llama_cpp.llama_sampler_init_grammar(self.model.vocab, grammar.encode("utf-8"), b"root")
        if not sampler:
            raise BackendError("llama.cpp rejected the output grammar", fix="check the extraction attributes (types, allowed values)")
        return sampler

    def _apply(self, sampler, data: np.ndarray) -> np.ndarray:
        """Run the grammar over candidate tokens `data` (id, logit, p); disallowed ones get -inf logits."""
        llama_cpp = self.llama_cpp
        array = llama_cpp.llama_token_data_array(
            data=ctypes.cast(data.ctypes.data, llama_cpp.llama_token_data_p), size=len(data), selected=-1, sorted=False
        )
        llama_cpp.llama_sampler_apply(sampler, ctypes.byref(array))
        return data["logit"]

    def _pick_constrained(self, sampler, logprobs: np.ndarray, temperature: float, rng: np.random.Generator | None = None) -> int:
        """The model's own pick when the grammar allows it (cheap check of one token), else the best allowed token."""
        token = self._pick(logprobs, temperature, rng)
        one = np.zeros(1, dtype=_TOKEN_DATA)
        one["id"], one["logit"] = token, logprobs[token]
        if not np.isfinite(self._apply(sampler, one)[0]):
            data = np.zeros(self.n_vocab, dtype=_TOKEN_DATA)
            data["id"] = np.arange(self.n_vocab)
            data["logit"] = logprobs
            allowed = self._apply(sampler, data)
            finite = np.isfinite(allowed)
            if not finite.any():
                return -1
            masked = np.where(finite, logprobs, -np.inf)
            token = self._pick(masked - np.logaddexp.reduce(masked[finite]), temperature, rng)
        if not self.llama_cpp.llama_vocab_is_eog(self.model.vocab, token):
            self.llama_cpp.llama_sampler_accept(sampler, token)
        return token

    def _pick(self, logprobs: np.ndarray, temperature: float, rng: np.random.Generator | None = None) -> int:
        if temperature <= 0:
            return int(np.argmax(logprobs))
        from scipy.special import softmax

        probs = softmax(logprobs / temperature)
        return int((rng or self.rng).choice(len(probs), p=probs / probs.sum()))

    def forward_seconds(self, token_lists: list[list[int]]) -> float:
        """Time of the bare forward pass over `token_lists` (no prompt around them), packed into full batches.

        This is the speed limit a labeler is measured against: each list in its own sequence, as many
        per decode as fit, logits read only at each list's last token. A list longer than a batch is cut into
        batch-long pieces, each a sequence of its own: every decode stays full, and each piece attends to less
        than the list's real context, so the figure can only be lower than any evaluation of the lists.
        """
        pieces = [t[i : i + self.n_batch] for t in token_lists for i in range(0, len(t), self.n_batch)]
        saved = list(self.prefix)
        self.set_prefix([])
        started = time.perf_counter()
        for group in self._row_groups([_Row(tokens=t) for t in pieces], 0, self.n_seq - 1):
            self._clear_slots([row.slot for row in group])
        elapsed = time.perf_counter() - started
        self.set_prefix(saved)
        return elapsed

    def detokenize(self, tokens: list[int]) -> str:
        return b"".join(self.piece(t) for t in tokens).decode("utf-8", "replace")

    def close(self) -> None:
        if self.batch is not None:
            self.llama_cpp.llama_batch_free(self.batch)
            self.batch = None
        self.ctx.close()
        self.model.close()


SKIP_STEP = 8  # with skip_mass: candidates a row's next turn of subtrees holds (at least one subtree)
MAX_SEQUENCES = 256  # llama.cpp's limit on a context's sequences (LLAMA_MAX_SEQ)
_TOKEN_DATA = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])  # llama_token_data


def common_prefix(token_lists: list[list[int]]) -> int:
    """Length of the prefix shared by every list, leaving each list at least one token of its own."""
    first = token_lists[0]
    n = min(len(t) for t in token_lists) - 1
    for i in range(max(n, 0)):
        token = first[i]
        if any(t[i] != token for t in token_lists):
            return i
    return max(n, 0)


def _trie_size(trie: list[_TrieNode]) -> int:
    """Nodes in the trie: the most KV cells the continuations of one row take at once."""
    stack, n = list(trie), 0
    while stack:
        node = stack.pop()
        n += 1
        stack.extend(node.children.values())
    return n


def _build_trie(candidates: list[list[int]]) -> list[_TrieNode]:
    """Roots are first tokens of candidates longer than one token; nodes exclude each candidate's last token."""
    roots: dict[int, _TrieNode] = {}
    for index, tokens in enumerate(candidates):
        if len(tokens) < 2:
            continue
        level, node = roots, None
        for depth, token in enumerate(tokens[:-1]):
            node = level.get(token)
            if node is None:
                node = level[token] = _TrieNode(token=token, depth=depth)
            node.candidates.append(index)
            level = node.children
    return list(roots.values())


def schema_grammar(schema: dict) -> str:
    """A JSON schema as a GBNF grammar (llama.cpp's own converter, shipped with llama-cpp-python)."""
    import json

    _import_llama_cpp()
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        return json_schema_to_gbnf(json.dumps(schema))
    except Exception as exc:  # the converter raises plain Exceptions
        raise BackendError(f"cannot turn the output schema into a grammar: {exc}", fix="check the extraction attributes") from None


_ENGINES: dict[tuple, _Engine] = {}
_ENGINES_LOCK = threading.Lock()


def unload_all() -> int:
    """Forget every loaded model (the next backend loads its own): for benchmarks that time a load. Returns how many."""
    with _ENGINES_LOCK:
        count = len(_ENGINES)
        _ENGINES.clear()
    return count


class LlamaCppBackend(Backend):
    """llama.cpp in-process. The model loads on first use and is shared by backends with the same settings."""

    name = "llama_cpp"
    can_score = True
    has_logprobs = True
    supports_schema = True

    def __init__(self, spec, *, base_dir=None):
        super().__init__(spec, base_dir=base_dir)
        self._resolved: ResolvedModel | None = None

    @property
    def resolved(self) -> ResolvedModel:
        if self._resolved is None:
            self._resolved = resolve_model(self.spec.name, self.base_dir)
        return self._resolved

    @property
    def model_id(self) -> str:
        return self.resolved.name

    @property
    def model_sha256(self) -> str:
        return self.resolved.sha256

    @property
    def preferred_batch_size(self) -> int:
        """Rows per committed batch: 128. The engine sorts a call's prompts so rows that begin with the same demos
        share their evaluation; over 32 rows a call shares a few percent less of conll2003's prompts than over 128."""
        return 128

    @property
    def engine(self) -> _Engine:
        spec = self.spec
        n_seq = int(spec.params.get("n_seq", 64))
        n_batch = int(spec.params.get("n_batch", 512))
        threads = spec.n_threads or os.cpu_count() or 2
        key = (str(self.resolved.path), spec.n_ctx, n_batch, n_seq, threads)
        with _ENGINES_LOCK:
            engine = _ENGINES.get(key)
            if engine is None:
                engine = _ENGINES[key] = _Engine(self.resolved, n_ctx=spec.n_ctx, n_batch=n_batch, n_seq=n_seq, n_threads=threads, seed=spec.seed)
        return engine

    def render(self, prompt: Prompt) -> str:
        return self.engine.render(prompt)

    def count_tokens(self, text: str) -> int:
        return len(self.engine.tokenize(text, add_bos=False))

    def score(self, prompts: Sequence[Prompt], candidates: Sequence[str]) -> list[ScoreResult]:
        engine = self.engine
        with engine.lock:
            started = time.perf_counter()
            token_lists = [engine.prompt_tokens(p) for p in prompts]
            self._check_length(token_lists)
            cand_tokens = [engine.tokenize(c, add_bos=False, special=False) for c in candidates]
            scores = engine.score(token_lists, cand_tokens, float(self.spec.params.get("skip_mass", 0.0)))
            per_row = (time.perf_counter() - started) / len(prompts)
        return [ScoreResult(logprobs=s, prompt_tokens=len(t), latency_s=per_row) for s, t in zip(scores, token_lists)]

    def generate(
        self, prompts: Sequence[Prompt], *, max_tokens: int, temperature: float, seed: int, schema: dict | None = None
    ) -> list[Generation]:
        engine = self.engine
        grammar = schema_grammar(schema) if schema else None
        with engine.lock:
            started = time.perf_counter()
            token_lists = [engine.prompt_tokens(p) for p in prompts]
            self._check_length(token_lists, extra=max_tokens)
            outputs = engine.generate(token_lists, max_tokens=max_tokens, temperature=temperature, grammar=grammar, seed=seed)
            per_row = (time.perf_counter() - started) / len(prompts)
            results = []
            for (tokens, lps, first), t in zip(outputs, token_lists):
                pieces = [engine.piece(tok).decode("utf-8", "replace") for tok in tokens]
                top: dict[str, float] = {}
                for tok, lp in first:
                    text = engine.piece(tok).decode("utf-8", "replace")
                    top[text] = float(np.logaddexp(top[text], lp)) if text in top else lp
                text = engine.detokenize(tokens)
                lead = len(text) - len(text.lstrip())
                results.append(
                    Generation(
                        text=text.strip(), token_logprobs=lps, prompt_tokens=len(t), completion_tokens=len(tokens), latency_s=per_row,
                        tokens=pieces, lead=lead, top_logprobs=top,
                    )
                )
        return results

    def _check_length(self, token_lists: list[list[int]], extra: int = 8) -> None:
        longest = max(len(t) for t in token_lists)
        if longest + extra > self.spec.n_ctx:
            raise BackendError(
                f"a prompt of {longest} tokens does not fit the context window of {self.spec.n_ctx}",
                fix="raise model.n_ctx, use fewer few-shot examples (examples.k), or shorten the input",
            )

    def close(self) -> None:
        """Engines are shared per process; they are freed at exit."""
