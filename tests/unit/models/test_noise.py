import pytest
import torch

from textwae.models.noise import blank, body_mask, encoder_noise, local_shuffle, word_drop
from textwae.text.batching import pad
from textwae.text.tokenizers import BOS_ID, EOS_ID, PAD_ID, UNK_ID

BODY_START = 10  # body ids are 10, 11, ...: unique in a row, so each token can be tracked


def units(n: int = 300, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n units of bos, 1..20 unique body ids, eos, padded: ids (n, 22) and mask."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 21, (n,), generator=generator).tolist()
    lengths[0] = 20  # one unit as long as the longest possible: T is 22 every time
    return pad([[BOS_ID, *range(BODY_START, BODY_START + k), EOS_ID] for k in lengths], PAD_ID)


def frame_kept(ids: torch.Tensor, mask: torch.Tensor) -> None:
    """bos first, eos last among the real tokens, pad after them, no special id in the body."""
    lengths = mask.sum(dim=1)
    rows = torch.arange(ids.shape[0])
    assert (ids[:, 0] == BOS_ID).all()
    assert (ids[rows, lengths - 1] == EOS_ID).all()
    assert (ids[~mask] == PAD_ID).all()
    body = ids[body_mask(mask)]
    assert not torch.isin(body, torch.tensor([BOS_ID, EOS_ID, PAD_ID])).any()


def generator(seed: int = 1) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_the_body_is_every_real_token_but_the_first_and_last():
    _, mask = pad([[BOS_ID, 10, 11, EOS_ID], [BOS_ID, EOS_ID]], PAD_ID)
    assert body_mask(mask).tolist() == [[False, True, True, False], [False, False, False, False]]


def test_word_drop_keeps_the_shape_and_frame_and_the_order_of_what_it_keeps():
    ids, mask = units()
    noisy, noisy_mask = word_drop(ids, mask, 0.3, PAD_ID, generator())
    assert noisy.shape == ids.shape and noisy_mask.shape == mask.shape
    frame_kept(noisy, noisy_mask)
    for row, clean in zip(noisy[body_mask(noisy_mask)].split(
            (noisy_mask.sum(dim=1) - 2).tolist()), ids, strict=True):
        assert torch.all(row[1:] > row[:-1])  # a subsequence, in its order
        assert torch.isin(row, clean).all()


def test_word_drop_deletes_about_its_rate_of_the_body():
    ids, mask = units(2000)
    _, noisy_mask = word_drop(ids, mask, 0.3, PAD_ID, generator())
    share = 1 - (noisy_mask.sum() - 2 * len(ids)) / body_mask(mask).sum()
    assert 0.28 < share.item() < 0.32


def test_blank_replaces_about_its_rate_of_the_body_by_unk_and_nothing_else():
    ids, mask = units(2000)
    noisy = blank(ids, mask, 0.2, UNK_ID, generator())
    changed = noisy != ids
    assert not (changed & ~body_mask(mask)).any()
    assert (noisy[changed] == UNK_ID).all()
    assert 0.18 < (changed.sum() / body_mask(mask).sum()).item() < 0.22
    frame_kept(noisy, mask)


@pytest.mark.parametrize("distance", [1, 3])
def test_local_shuffle_permutes_each_body_moving_no_token_more_than_its_distance(distance):
    ids, mask = units(500)
    noisy = local_shuffle(ids, mask, distance, generator())
    frame_kept(noisy, mask)
    assert torch.equal(noisy.sort(dim=1).values, ids.sort(dim=1).values)  # a permutation
    body = body_mask(mask)
    # a body token's id tells where it was: position = id - BODY_START + 1
    moved = (torch.arange(ids.shape[1]) - (noisy - BODY_START + 1)).abs()[body]
    assert moved.max().item() == distance  # never further, and that far for some
    assert (moved > 0).float().mean() > 0.2


def test_noise_is_deterministic_given_a_generator_and_off_at_zero():
    ids, mask = units()
    first = encoder_noise(ids, mask, shuffle=3, drop=0.1, blank_rate=0.1, pad_id=PAD_ID,
                          blank_id=UNK_ID, generator=generator(5))
    again = encoder_noise(ids, mask, shuffle=3, drop=0.1, blank_rate=0.1, pad_id=PAD_ID,
                          blank_id=UNK_ID, generator=generator(5))
    other = encoder_noise(ids, mask, shuffle=3, drop=0.1, blank_rate=0.1, pad_id=PAD_ID,
                          blank_id=UNK_ID, generator=generator(6))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], other[0])
    frame_kept(*first)


def test_no_noise_returns_the_input_and_draws_nothing_from_the_global_generator():
    """The defaults must not move torch's generator: runs and resumes stay as they were."""
    ids, mask = units()
    state = torch.get_rng_state()
    noisy, noisy_mask = encoder_noise(ids, mask, pad_id=PAD_ID, blank_id=UNK_ID)
    assert noisy is ids and noisy_mask is mask
    assert torch.equal(torch.get_rng_state(), state)
