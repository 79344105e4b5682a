import pytest

from dmlbook import bandwidth
from dmlbook.sheet import SHEET as SHEET_NUMBERS
from dmlbook.units import GBIT, MBIT
from conftest import BAD_NUMBERS

SHEET = {k: v for k, v in SHEET_NUMBERS.ex1.items() if k != "n_params"}


def test_sheet_case():
    limit = bandwidth.max_participants(85_098, **SHEET)
    assert limit.download == 22_033
    assert limit.upload == 2_203
    assert limit.n_max == 2_203
    assert limit.bottleneck == "upload"
    assert limit.model_bits == 2_723_136


def test_hand_worked_cases():
    # 1,000 params x 8 bits = 8,000 bits; 10 s x 8,000 bit/s = 80,000 bits -> 10.
    limit = bandwidth.max_participants(1_000, bits_per_param=8, download_bps=8_000,
                                       upload_bps=16_000, time_limit_s=10)
    assert (limit.download, limit.upload, limit.n_max) == (10, 20, 10)
    assert limit.bottleneck == "download"
    # Exactly on the boundary counts: 60 s x 1e6 bit/s / 1e6 bits = 60.
    limit = bandwidth.max_participants(31_250, download_bps=1e6, upload_bps=1e6,
                                       time_limit_s=60)
    assert limit.n_max == 60
    # Too little time for anyone: 0 participants, not an error.
    assert bandwidth.max_participants(85_098, **{**SHEET, "time_limit_s": 0.01}).n_max == 0


def test_halving_bits_doubles_participants():
    full = bandwidth.max_participants(85_098, **SHEET)
    half = bandwidth.max_participants(85_098, **{**SHEET, "bits_per_param": 16})
    assert half.upload == 4_406 and half.download == 44_066
    assert half.n_max == 2 * full.n_max == 4_406


def test_transfer_times():
    times = bandwidth.transfer_times(85_098, 2_203, download_bps=1 * GBIT,
                                     upload_bps=100 * MBIT)
    assert times.upload_s == pytest.approx(2_203 * 2_723_136 / 1e8)
    assert times.download_s == pytest.approx(2_203 * 2_723_136 / 1e9)
    assert times.upload_s <= 60 < bandwidth.transfer_times(
        85_098, 2_204, download_bps=1 * GBIT, upload_bps=100 * MBIT).upload_s
    assert times.slowest_s == times.upload_s


@pytest.mark.parametrize("param", ["n_params", "bits_per_param", "download_bps",
                                   "upload_bps", "time_limit_s"])
@pytest.mark.parametrize("bad", BAD_NUMBERS)
def test_max_participants_rejects_bad_input(param, bad):
    kwargs = {"n_params": 85_098, **SHEET, param: bad}
    with pytest.raises(ValueError, match=param):
        bandwidth.max_participants(**kwargs)


@pytest.mark.parametrize("param", ["n_params", "n_participants", "bits_per_param",
                                   "download_bps", "upload_bps"])
@pytest.mark.parametrize("bad", BAD_NUMBERS)
def test_transfer_times_rejects_bad_input(param, bad):
    kwargs = dict(n_params=85_098, n_participants=10, bits_per_param=32,
                  download_bps=1e9, upload_bps=1e8)
    kwargs[param] = bad
    with pytest.raises(ValueError, match=param):
        bandwidth.transfer_times(**kwargs)


def test_fractional_counts_rejected():
    with pytest.raises(ValueError, match="n_params must be a whole number"):
        bandwidth.max_participants(10.5, **SHEET)


def test_cdn_moves_the_bottleneck_to_the_download_link():
    sheet = dict(bits_per_param=32, download_bps=1e9, upload_bps=1e8, time_limit_s=60)
    cdn = bandwidth.max_participants_with_cdn(85_098, **sheet)
    # Hand-worked: floor(60 * 1e9 / 2,723,136) = 22,033; one copy up: 27.23136 ms.
    assert cdn.n_max == 22_033 and cdn.bottleneck == "download"
    assert cdn.server_upload_s == pytest.approx(2_723_136 / 1e8)
    # 2,203 copies still fit into 60 s; 2,204 do not.
    assert bandwidth.max_participants_with_cdn(85_098, server_copies=2203, **sheet).n_max == 22_033
    none = bandwidth.max_participants_with_cdn(85_098, server_copies=2204, **sheet)
    assert none.n_max == 0 and none.bottleneck == "upload"
    with pytest.raises(ValueError, match="server_copies"):
        bandwidth.max_participants_with_cdn(85_098, server_copies=0, **sheet)


def test_broadcast_tree_levels_and_time():
    tree = bandwidth.broadcast_tree(22_033, 85_098, fanout=8, upload_bps=1e8)
    # 8, 64, 512, 4096, 32768 new clients per level: 4,680 after four levels, all after five.
    assert tree.levels == 5
    assert tree.reached == (8, 72, 584, 4680, 22_033)
    assert tree.level_s == pytest.approx(8 * 2_723_136 / 1e8)
    assert tree.total_s == pytest.approx(5 * 8 * 2_723_136 / 1e8)
    assert bandwidth.broadcast_tree(8, 10, fanout=8, upload_bps=1e8).levels == 1
    with pytest.raises(ValueError, match="fanout"):
        bandwidth.broadcast_tree(10, 10, fanout=1, upload_bps=1e8)
    with pytest.raises(ValueError, match="n_clients"):
        bandwidth.broadcast_tree(10**12, 10, fanout=2, upload_bps=1e8)


def test_local_steps_to_fit():
    links = dict(download_bps=1e9, upload_bps=1e8)
    # 2,203 x 2,723,136 bits / 1e8 b/s = 59.9906... s; / 0.05 s = 1199.8 -> 1,200 steps.
    assert bandwidth.local_steps_to_fit(2203, 85_098, step_s=0.05, **links) == 1200
    # Exactly on the boundary: 1 client, 27.23136 ms, steps of 27.23136 ms -> 1 step.
    assert bandwidth.local_steps_to_fit(1, 85_098, step_s=0.02723136, **links) == 1
    assert bandwidth.local_steps_to_fit(1, 85_098, step_s=0.0272313, **links) == 2
    with pytest.raises(ValueError, match="step_s"):
        bandwidth.local_steps_to_fit(1, 85_098, step_s=0, **links)


def test_a_tie_is_not_reported_as_download():
    # 1,000 params x 32 bits = 32,000 bits; 1 s at 1 Mbit/s each way: 31 participants each.
    tie = bandwidth.max_participants(1_000, download_bps=MBIT, upload_bps=MBIT,
                                     time_limit_s=1)
    assert (tie.download, tie.upload, tie.n_max) == (31, 31, 31)
    assert tie.bottleneck == "upload"
    # A slower download link (0.5 Mbit/s: 15 participants) is the bottleneck.
    slow = bandwidth.max_participants(1_000, download_bps=MBIT / 2, upload_bps=MBIT,
                                      time_limit_s=1)
    assert (slow.download, slow.upload, slow.bottleneck) == (15, 31, "download")


def test_numpy_float32_speeds():
    import numpy as np

    limit = bandwidth.max_participants(85_098, bits_per_param=np.int64(32),
                                       download_bps=np.float32(1e9), upload_bps=np.float32(1e8),
                                       time_limit_s=np.float32(60))
    assert (limit.download, limit.upload) == (22_033, 2_203)
