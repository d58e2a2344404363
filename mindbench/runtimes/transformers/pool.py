"""Continuous batching for the transformers engine (runtimes/hf.py) and the KV-cache helpers it needs.

- `decode_pool`: at most batch_size rows decode together; a finished row's slot takes the next prompt.
- `new_cache(model)`: a DynamicCache whose plain layers grow into spare capacity instead of
  being copied whole every step. transformers' DynamicLayer appends a token with torch.cat,
  which allocates and copies the layer's whole cache on every decode step: profiled on the code
  suite (SmolLM2-135M, fp32, 2 CPU cores, batch 8, prompts ~150 tokens + up to 256 new), that
  copy was 27% of generation time (208 of 770 s, torch.cat in DynamicLayer.update), more than
  attention itself. Here a step writes one column into a preallocated buffer; the buffer
  doubles when full, so the copying is amortised to O(1) per token.
- `joinable`, `join`, `trim_left`: rows' caches left-padded and stacked, so a prompt can join a
  running batch when another row ends, and columns that are padding in every row are dropped.

torch and transformers are imported on first use (importing mindbench never imports torch).
"""

from __future__ import annotations

import functools


def decode_pool(engine, queue: list[tuple[int, list[int]]], params, eos: set[int], done) -> None:
    """Continuous batching: at most batch_size rows decode together; a row leaves the batch
    the step it ends (EOS, a stop string or the token limit) and the next waiting prompt
    takes its slot (prefilled, its KV cache left-padded to the batch's width and joined).

    Static batches (model.generate) keep every row until the longest one ends, so one long
    answer made seven short ones idle, and the next batch waited for it; on a small model
    on the CPU a decode step of 8 rows costs little more than one of 1, so the number of
    steps is the time. The decoding rule is generate()'s own (the same processors, argmax
    or multinomial over float32 logits, positions from the attention mask), so greedy
    outputs equal generate()'s and batch 1's (tests/test_engine.py). Caches other than
    plain DynamicLayers (sliding windows: Gemma 3) cannot be joined; there the next prompts
    wait until the running batch is empty (rows still leave it as they end).
    transformers' continuous-batching generate_batch also runs on the CPU here (5.24), but
    took longer than batch-1 generate() on 3 short prompts (paged cache set-up per call), so
    it is not used. Calls done(input index, new ids, stop step or None) per row as it ends.

    When the queue is empty and few rows are left (the tail, where one long answer decodes
    alone), a greedy batch also drafts tokens by prompt lookup (`lookup_draft`) and verifies
    them in the same forward: a step of r rows costs about what a step of batch_size rows does
    (the weights are read once), so each row may carry batch_size // r - 1 drafts at no extra
    weight traffic. A draft is kept only while it equals the argmax the model gives at its
    place, so the output is the greedy output. Returns counters: forwards, drafted, accepted.
    """
    import collections

    import torch

    names = engine._forward_params()
    cache_kw = "cache" if "cache" in names else "past_key_values"
    keep1 = {"logits_to_keep": 1} if "logits_to_keep" in names else {}
    stops = tuple(s for s in params.stop if s)
    window = max((len(s.encode()) for s in stops), default=0) + 2  # as StopOnStrings
    pad_lens: list[int] = []  # left padding per row; the penalty reads it in place
    procs = engine._gen_kwargs(params, pad_lens)["logits_processor"]
    pad_id = engine.tokenizer.pad_token_id
    waiting = collections.deque(queue)
    active: list[int] = []  # batch row -> input index
    new: dict[int, list[int]] = {}
    cache = mask = seq = pos = logits = None
    can_join = True
    # Drafts only where the result provably is the greedy one: argmax with no processor (a
    # penalty would read the rejected drafts' columns), and caches that take masked holes
    # (a sliding window counts columns, not positions).
    may_draft = params.temperature == 0 and not procs and params.batch_size > 1
    prompt_ids = dict(queue)  # input index -> prompt ids (with new[r], the lookup source)
    pending: dict[int, list[int]] = {}  # drafts the last forward accepted, not yet emitted
    stats = {"forwards": 0, "drafted": 0, "accepted": 0}
    while waiting or active:
        free = params.batch_size - len(active)
        if waiting and free > 0 and (can_join or not active):
            take = [waiting.popleft() for _ in range(min(free, len(waiting)))]
            ids, m, pl = engine._batch_tensors([r for _, r in take])
            p = (m.cumsum(-1) - 1).masked_fill(m == 0, 0)  # generate()'s position ids
            c = new_cache(engine.model)
            out = engine.model(
                input_ids=ids, attention_mask=m, position_ids=p, use_cache=True, **{cache_kw: c}, **keep1
            )
            c = getattr(out, "cache", None) or getattr(out, "past_key_values", None) or c
            can_join = can_join and joinable(c)
            part = (c, m, ids, p[:, -1:], out.logits[:, -1, :], pl)
            if active:
                cache, mask, seq, pos, logits, pl = join((cache, mask, seq, pos, logits, pad_lens), part, pad_id)
            else:
                cache, mask, seq, pos, logits, pl = part
            pad_lens[:] = pl
            active += [i for i, _ in take]
            new.update((i, []) for i, _ in take)
            stats["forwards"] += 1
        scores = procs(seq, logits.to(dtype=torch.float32))
        if params.temperature == 0:
            nxt = scores.argmax(-1)
        else:
            nxt = torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1).squeeze(1)
        seq = torch.cat([seq, nxt[:, None]], dim=-1)
        keep = []
        for b, t in enumerate(nxt.tolist()):
            r = active[b]
            # accepted drafts first: they are the argmaxes of the places before this token
            for tok in pending.pop(r, []) + [t]:
                new[r].append(tok)
                if tok in eos or len(new[r]) >= params.max_new_tokens:
                    done(r, new.pop(r), None)
                    break
                if stops and any(s in engine._decode(new[r][-window:]) for s in stops):
                    done(r, new[r], len(new.pop(r)))
                    break
            else:
                keep.append(b)
        if not keep:
            active, cache = [], None
            continue
        pos = pos + 1
        if len(keep) < len(active):
            sel = torch.tensor(keep, device=engine.device)
            cache.batch_select_indices(sel)
            mask, seq, pos, logits = mask[sel], seq[sel], pos[sel], None
            pad_lens[:] = [pad_lens[b] for b in keep]
            active = [active[b] for b in keep]
            if can_join:
                # Columns that are padding in every row left with the rows that needed them.
                lead = int(mask.any(0).int().argmax())
                if lead:
                    trim_left(cache, lead)
                    mask, seq = mask[:, lead:], seq[:, lead:]
                    pad_lens[:] = [n - lead for n in pad_lens]
        room = params.batch_size // len(active) - 1
        drafts = (
            [lookup_draft(prompt_ids[r] + new[r], min(room, MAX_DRAFT)) for r in active]
            if may_draft and can_join and room > 0 and not waiting
            else []
        )
        width = 1 + max(map(len, drafts), default=0)
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], width)], dim=-1)
        if width == 1:
            inp, pos_in = seq[:, -1:], pos
        else:
            # Rows with fewer drafts are filled with their last token; those places are never
            # accepted (a row accepts at most its own drafts) and are masked out below.
            inp = torch.tensor(
                [[t] + d + [t] * (width - 1 - len(d)) for t, d in zip(seq[:, -1].tolist(), drafts)],
                device=engine.device,
            )
            pos_in = pos + torch.tensor(list(range(width)), device=engine.device)
        out = engine.model(
            input_ids=inp,
            attention_mask=mask,
            position_ids=pos_in,
            use_cache=True,
            **{cache_kw: cache},
            **({"logits_to_keep": width} if keep1 else {}),
        )
        stats["forwards"] += 1
        cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None) or cache
        if width == 1:
            logits = out.logits[:, -1, :]
            continue
        best = out.logits[:, -width:, :].to(dtype=torch.float32).argmax(-1).tolist()
        took = []
        for b, d in enumerate(drafts):
            n = 0
            while n < len(d) and best[b][n] == d[n]:
                n += 1
            took.append(n)
            if n:
                pending[active[b]] = d[:n]
            mask[b, mask.shape[1] - width + 1 + n :] = 0  # the rejected drafts' columns
            stats["drafted"] += len(d)
            stats["accepted"] += n
        rows = torch.tensor(list(range(len(drafts))), device=engine.device)
        at = torch.tensor(took, device=engine.device)
        logits = out.logits[:, -width:, :][rows, at]
        pos = pos + at[:, None]
        seq = torch.cat([seq, inp[:, 1:]], dim=-1)
        if mask.shape[1] > 2 * int(mask.sum(1).max()) + COMPACT_SLACK:
            cache, mask, seq = compact(cache, mask, seq)
            pad_lens[:] = (mask.shape[1] - mask.sum(1)).tolist()
    return stats


# At most this many drafted tokens per row and step: transformers' prompt lookup proposes 10;
# on a CPU a forward of 8 places costs about what one of 1 does for a small model, more does not.
MAX_DRAFT = 7
# Holes are compacted once the cache is over twice its kept width plus this many columns.
COMPACT_SLACK = 64


def lookup_draft(history: list[int], k: int, max_ngram: int = 3) -> list[int]:
    """Prompt-lookup drafting (as transformers' PromptLookupCandidateGenerator): the k tokens
    that followed the latest earlier occurrence of the history's last n tokens, n from max_ngram
    down to 1. Code repeats its prompt's names and its own lines, and a row stuck in a loop
    repeats itself: those are the tokens this finds. [] when nothing matches."""
    if k <= 0:
        return []
    for n in range(min(max_ngram, len(history) - 1), 0, -1):
        tail = history[-n:]
        for start in range(len(history) - n - 1, -1, -1):
            if history[start : start + n] == tail:
                return history[start + n : start + n + k]
    return []


def compact(cache, mask, seq):
    """Drop the masked holes rejected drafts leave: each row's kept columns, in order, moved to
    the right edge (left padding again), so attention stops reading them."""
    import torch

    width = int(mask.sum(1).max())
    # a stable sort puts every row's masked columns first and keeps the kept ones in order
    idx = torch.sort(mask, dim=1, stable=True).indices[:, -width:]
    for layer in cache.layers:
        for name in ("keys", "values"):
            t = getattr(layer, name)
            setattr(layer, name, t.gather(2, idx[:, None, :, None].expand(t.shape[0], t.shape[1], width, t.shape[3])))
    return cache, mask.gather(1, idx), seq.gather(1, idx)


@functools.cache
def _growing_layer():
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        """A DynamicLayer whose keys/values are views of buffers with spare room at the end.

        Anything that replaces keys/values (batch_select_indices, crop, join, trim_left) leaves
        them not a view of the buffer's start; the next update notices (data pointer, batch and
        room) and copies them into a fresh buffer, so every path the parent supports still works.
        """

        _kbuf = _vbuf = None

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            n = self.keys.shape[-2] if self.keys.dim() == 4 else 0
            end = n + key_states.shape[-2]
            buf = self._kbuf
            if (
                buf is None
                or n == 0
                or buf.shape[0] != key_states.shape[0]
                or end > buf.shape[-2]
                or self.keys.data_ptr() != buf.data_ptr()
                or self.keys.stride() != buf.stride()
            ):
                cap = end + max(64, end)  # double: a copy every time the length doubles
                b, h, _, d = key_states.shape
                kb = key_states.new_empty((b, h, cap, d))
                vb = value_states.new_empty((b, h, cap, value_states.shape[-1]))
                if n:
                    kb[:, :, :n] = self.keys
                    vb[:, :, :n] = self.values
                self._kbuf, self._vbuf = kb, vb
            self._kbuf[:, :, n:end] = key_states
            self._vbuf[:, :, n:end] = value_states
            self.keys, self.values = self._kbuf[:, :, :end], self._vbuf[:, :, :end]
            return self.keys, self.values

    return GrowingLayer


def new_cache(model):
    """A DynamicCache for `model`, its plain DynamicLayers replaced by growing ones (sliding-window
    and other special layers are kept as transformers made them)."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    cache = DynamicCache(config=model.config)
    layers = getattr(cache, "layers", None) or []
    grow = _growing_layer()
    for i, layer in enumerate(layers):
        if type(layer) is DynamicLayer and not layer.is_initialized:
            layers[i] = grow()
    return cache


def joinable(cache) -> bool:
    """Whether rows' caches can be left-padded and stacked: plain (or growing) DynamicLayers only."""
    from transformers.cache_utils import DynamicLayer

    layers = getattr(cache, "layers", None)
    kinds = (DynamicLayer, _growing_layer())
    return bool(layers) and all(type(la) in kinds and la.is_initialized and la.keys.dim() == 4 for la in layers)


def join(a, b, pad_id):
    """Two running batches (cache, mask, ids, positions, next logits, left pads) as one: the
    narrower one's KV, mask and ids are left-padded (zeros, 0, pad id) to the wider one's width,
    so every row keeps its tokens at the right edge and attends to none of the padding."""
    import torch
    import torch.nn.functional as F

    wa, wb = a[1].shape[1], b[1].shape[1]
    w = max(wa, wb)
    for la, lb in zip(a[0].layers, b[0].layers):
        la.keys = torch.cat([F.pad(la.keys, (0, 0, w - wa, 0)), F.pad(lb.keys, (0, 0, w - wb, 0))], dim=0)
        la.values = torch.cat([F.pad(la.values, (0, 0, w - wa, 0)), F.pad(lb.values, (0, 0, w - wb, 0))], dim=0)
    mask = torch.cat([F.pad(a[1], (w - wa, 0), value=0), F.pad(b[1], (w - wb, 0), value=0)], dim=0)
    ids = torch.cat([F.pad(a[2], (w - wa, 0), value=pad_id), F.pad(b[2], (w - wb, 0), value=pad_id)], dim=0)
    return (
        a[0],
        mask,
        ids,
        torch.cat([a[3], b[3]], dim=0),
        torch.cat([a[4], b[4]], dim=0),
        [n + w - wa for n in a[5]] + [n + w - wb for n in b[5]],
    )


def trim_left(cache, n: int) -> None:
    """Drop the first n columns of every layer (padding in every row that is left)."""
    for la in cache.layers:
        la.keys, la.values = la.keys[:, :, n:, :], la.values[:, :, n:, :]
