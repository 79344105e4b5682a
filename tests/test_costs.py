import numpy as np
import pytest

from dmlbook import costs
from dmlbook.sheet import SHEET as SHEET_NUMBERS
from conftest import BAD_NUMBERS

SHEET = dict(rounds=SHEET_NUMBERS.lstm_rounds, clients_per_round=SHEET_NUMBERS.lstm_clients_per_round,
             usd_per_gib=SHEET_NUMBERS.usd_per_gib)


def test_sheet_case():
    usd = costs.fl_download_cost(4_950_544, **SHEET)
    assert round(usd, 2) == 110.65
    assert costs.fl_download_bytes(4_950_544, rounds=1, clients_per_round=1) == 19_802_176


def test_hand_worked_cases():
    # One GiB of parameters at 4 B each, one round, one client: exactly the price.
    assert costs.fl_download_cost(2**28, rounds=1, clients_per_round=1,
                                  usd_per_gib=0.05) == pytest.approx(0.05)
    # 2 bytes per parameter halves the bill.
    assert costs.fl_download_cost(4_950_544, bytes_per_param=2, **SHEET) == pytest.approx(
        costs.fl_download_cost(4_950_544, **SHEET) / 2)


def test_cumulative_cost():
    curve = costs.fl_cumulative_cost(4_950_544, **SHEET)
    assert curve.shape == (1000,)
    assert curve[-1] == pytest.approx(costs.fl_download_cost(4_950_544, **SHEET))
    assert np.allclose(np.diff(curve), curve[0])
    both = costs.fl_cumulative_cost(4_950_544, upload_usd_per_gib=0.03, **SHEET)
    assert both[-1] == pytest.approx(2 * curve[-1])


def test_decentralized_alternative():
    cmp = costs.compare_download_costs(4_950_544, **SHEET)
    assert cmp.dl_usd == 0.0
    assert round(cmp.saving_usd, 2) == 110.65
    assert cmp.dl_bytes == 8 * cmp.fl_bytes  # 8 neighbours each, same nodes and rounds
    metered = costs.dl_download_cost(1_000, rounds=2, nodes=3, degree=2, usd_per_gib=1.0,
                                     bytes_per_param=4)
    assert metered == pytest.approx(2 * 3 * 2 * 4_000 / 2**30)


@pytest.mark.parametrize("param", ["n_params", "rounds", "clients_per_round",
                                   "usd_per_gib", "bytes_per_param"])
@pytest.mark.parametrize("bad", BAD_NUMBERS)
def test_fl_download_cost_rejects_bad_input(param, bad):
    kwargs = {"n_params": 4_950_544, **SHEET, "bytes_per_param": 4, param: bad}
    with pytest.raises(ValueError, match=param):
        costs.fl_download_cost(**kwargs)


@pytest.mark.parametrize("param", ["n_params", "rounds", "nodes", "degree", "bytes_per_param"])
@pytest.mark.parametrize("bad", BAD_NUMBERS)
def test_dl_download_cost_rejects_bad_input(param, bad):
    kwargs = dict(n_params=10, rounds=1, nodes=2, degree=1, bytes_per_param=4)
    kwargs[param] = bad
    with pytest.raises(ValueError, match=param):
        costs.dl_download_cost(**kwargs)


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), "0", True])
def test_prices_that_may_be_zero_still_reject_nonsense(bad):
    with pytest.raises(ValueError, match="usd_per_gib"):
        costs.dl_download_cost(10, rounds=1, nodes=2, degree=1, usd_per_gib=bad)
    with pytest.raises(ValueError, match="upload_usd_per_gib"):
        costs.fl_cumulative_cost(10, rounds=1, clients_per_round=1, usd_per_gib=1,
                                 upload_usd_per_gib=bad)


@pytest.mark.parametrize("param", ["rounds", "clients_per_round", "usd_per_gib", "dl_degree"])
def test_compare_rejects_bad_input(param):
    kwargs = {**SHEET, "dl_degree": 8, param: 0}
    with pytest.raises(ValueError, match=param.removeprefix("dl_")):
        costs.compare_download_costs(4_950_544, **kwargs)


def test_fl_bill_hand_worked():
    sheet = dict(rounds=1000, clients_per_round=200)
    b32 = costs.fl_bill(4_950_544, usd_per_gib=0.03, **sheet)
    # 1000 x 200 x 19,802,176 B = 3,960,435,200,000 B = 3,688.44 GiB -> $110.65.
    assert b32.bytes == 3_960_435_200_000
    assert b32.gib == pytest.approx(3_960_435_200_000 / 2**30)
    assert round(b32.usd, 2) == 110.65
    # 8 bits: a quarter of the bytes, at three times the price: 3/4 of the bill.
    b8 = costs.fl_bill(4_950_544, usd_per_gib=0.09, bits_per_param=8, **sheet)
    assert b8.bytes == 990_108_800_000
    assert round(b8.usd, 2) == 82.99
    assert b8.usd == pytest.approx(0.75 * b32.usd)
    # Odd bit widths round the packed model up to whole bytes: 3 params x 3 bits = 2 B.
    assert costs.fl_bill(3, rounds=1, clients_per_round=1, usd_per_gib=1,
                         bits_per_param=3).bytes == 2
    with pytest.raises(ValueError, match="bits_per_param"):
        costs.fl_bill(10, rounds=1, clients_per_round=1, usd_per_gib=1, bits_per_param=0)
    with pytest.raises(ValueError, match="rounds"):
        costs.fl_bill(10, rounds=10**13, clients_per_round=1, usd_per_gib=1)


def test_affordable_rounds():
    # One round costs 200 x 19,802,176 B / 2**30 x $0.03 = $0.110652...; $1,000 buys 9,037.
    per_round = 200 * 19_802_176 / 2**30 * 0.03
    assert costs.affordable_rounds(1000, 4_950_544, clients_per_round=200,
                                   usd_per_gib=0.03) == int(1000 // per_round) == 9037
    assert costs.affordable_rounds(0.1, 4_950_544, clients_per_round=200,
                                   usd_per_gib=0.03) == 0
    with pytest.raises(ValueError, match="budget_usd"):
        costs.affordable_rounds(-1, 10, clients_per_round=1, usd_per_gib=1)


def test_cumulative_cost_honours_bytes_per_param():
    # 2**28 params x 2 B x 2 clients = 1 GiB per round at $0.5/GiB.
    curve = costs.fl_cumulative_cost(2**28, rounds=3, clients_per_round=2, usd_per_gib=0.5,
                                     bytes_per_param=2)
    assert list(curve) == [0.5, 1.0, 1.5]
    # Uploads at $0.25/GiB add 1 GiB x 0.25 per round.
    both = costs.fl_cumulative_cost(2**28, rounds=2, clients_per_round=2, usd_per_gib=0.5,
                                    bytes_per_param=2, upload_usd_per_gib=0.25)
    assert list(both) == [0.75, 1.5]
    # The sheet's model at 16 bits: 1000 x 200 x 4,950,544 x 2 B = 1,844.2 GiB -> $55.33.
    sixteen = costs.fl_cumulative_cost(4_950_544, bytes_per_param=2, **SHEET)
    assert len(sixteen) == 1000 and round(sixteen[-1], 2) == 55.33
    assert round(costs.fl_cumulative_cost(4_950_544, **SHEET)[-1], 2) == 110.65


def test_numpy_scalars_and_bounds():
    assert costs.fl_download_bytes(np.int64(10), rounds=np.float32(2), clients_per_round=3,
                                   bytes_per_param=np.float32(2)) == 120
    with pytest.raises(ValueError, match="rounds must be a whole number >= 1 and <= "):
        costs.fl_download_cost(10, rounds=10**18, clients_per_round=1, usd_per_gib=1)
    with pytest.raises(ValueError, match="rounds"):
        costs.fl_cumulative_cost(10, rounds=10**9, clients_per_round=1, usd_per_gib=1)
