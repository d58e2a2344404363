"""The KV-cache pieces of continuous batching (runtimes/hf_pool.py) on plain tensors, no model:
the growing layer returns exactly what transformers' DynamicLayer returns, through every
operation the decoder applies to it (append, drop rows, join, trim)."""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicLayer

from mindbench.runtimes.transformers import pool as hf_pool


def _kv(b, t, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 2, t, 4, generator=g), torch.randn(b, 2, t, 4, generator=g)


def test_growing_layer_equals_dynamic_layer_through_appends_and_row_drops():
    grow, ref = hf_pool._growing_layer()(), DynamicLayer()
    for step in range(150):  # past two doublings of the buffer
        k, v = _kv(3 if step < 100 else 2, 7 if step == 0 else 1, step)
        if step == 100:  # a row leaves: both drop row 1
            sel = torch.tensor([0, 2])
            grow.batch_select_indices(sel)
            ref.batch_select_indices(sel)
        gk, gv = grow.update(k, v)
        rk, rv = ref.update(k, v)
        assert torch.equal(gk, rk) and torch.equal(gv, rv)
        assert grow.get_seq_length() == ref.get_seq_length()
    # appends wrote into spare room: the keys are a view of a buffer longer than them
    assert grow._kbuf.shape[-2] > grow.keys.shape[-2] and grow.keys.data_ptr() == grow._kbuf.data_ptr()


def test_join_left_pads_the_narrower_batch_and_trim_drops_shared_padding():
    from transformers import DynamicCache

    def batch(b, t, seed):
        cache = DynamicCache()
        cache.layers = [hf_pool._growing_layer()()]
        cache.layers[0].update(*_kv(b, t, seed))
        mask = torch.ones(b, t, dtype=torch.long)
        ids = torch.full((b, t), 5)
        return (cache, mask, ids, torch.full((b, 1), t - 1), torch.zeros(b, 9), [0] * b)

    a, b = batch(2, 6, 1), batch(1, 3, 2)
    a_keys, b_keys = a[0].layers[0].keys.clone(), b[0].layers[0].keys.clone()
    cache, mask, ids, pos, logits, pads = hf_pool.join(a, b, pad_id=0)
    keys = cache.layers[0].keys
    assert keys.shape == (3, 2, 6, 4) and logits.shape == (3, 9) and pos[:, 0].tolist() == [5, 5, 2]
    assert torch.equal(keys[:2], a_keys) and torch.equal(keys[2, :, 3:], b_keys[0])
    assert not keys[2, :, :3].any() and mask[2].tolist() == [0, 0, 0, 1, 1, 1] and pads == [0, 0, 3]
    assert ids[2].tolist() == [0, 0, 0, 5, 5, 5]
    assert hf_pool.joinable(cache)
    # the two wide rows leave: three columns are padding in every row left, and go
    cache.batch_select_indices(torch.tensor([2]))
    hf_pool.trim_left(cache, 3)
    assert torch.equal(cache.layers[0].keys[0], b_keys[0])
    k, v = _kv(1, 1, 3)  # and the layer still grows from there
    out, _ = cache.layers[0].update(k, v)
    assert out.shape == (1, 2, 4, 4) and torch.equal(out[:, :, :3], b_keys) and torch.equal(out[:, :, 3:], k)


def test_lookup_draft_continues_the_latest_match_of_the_longest_suffix():
    # "2 3 4" (three tokens) occurred before: its continuation beats the later "3 4" match
    h = [1, 2, 3, 4, 5, 6, 9, 3, 4, 7, 8, 2, 3, 4]
    assert hf_pool.lookup_draft(h, 2) == [5, 6]
    # only "3 4" repeats: of its two earlier occurrences the later one's continuation is proposed
    h = [3, 4, 7, 9, 3, 4, 8, 0, 3, 4]
    assert hf_pool.lookup_draft(h, 2) == [8, 0]
    assert hf_pool.lookup_draft(h, 10) == [8, 0, 3, 4]  # never past the history's end
    assert hf_pool.lookup_draft([5, 6, 1, 6], 3) == [1, 6]  # one-token suffix as the last resort
    assert hf_pool.lookup_draft([1, 2, 3], 4) == []  # nothing repeats
    assert hf_pool.lookup_draft(h, 0) == [] and hf_pool.lookup_draft([7], 3) == []


def test_compact_moves_each_rows_kept_columns_to_the_right_edge_in_order():
    from transformers import DynamicCache

    cache = DynamicCache()
    cache.layers = [hf_pool._growing_layer()()]
    k, v = _kv(2, 6, 4)
    cache.layers[0].update(k, v)
    mask = torch.tensor(
        [
            [1, 0, 1, 1, 0, 0],  # row 0 keeps columns 0, 2, 3
            [0, 1, 1, 0, 1, 1],
        ]
    )  # row 1 keeps 1, 2, 4, 5
    seq = torch.arange(12).view(2, 6)
    cache, mask2, seq2 = hf_pool.compact(cache, mask, seq)
    assert mask2.tolist() == [[0, 1, 1, 1], [1, 1, 1, 1]]
    assert seq2[0, 1:].tolist() == [0, 2, 3] and seq2[1].tolist() == [7, 8, 10, 11]
    keys = cache.layers[0].keys
    assert torch.equal(keys[0, :, 1:], k[0, :, [0, 2, 3]]) and torch.equal(keys[1], k[1, :, [1, 2, 4, 5]])
    assert torch.equal(cache.layers[0].values[1], v[1, :, [1, 2, 4, 5]])
    out, _ = cache.layers[0].update(*_kv(2, 1, 5))  # and it still grows from there
    assert out.shape == (2, 2, 5, 4)
