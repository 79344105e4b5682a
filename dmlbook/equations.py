"""The solutions' equations of exercises 1 and 2, with the computed numbers filled in.

Rendered as LaTeX (IPython ``Math``); every input is checked by the closed form
that computes the result.
"""

from __future__ import annotations

import math

from . import bandwidth, costs


def _tex_int(n: int) -> str:
    return f"{n:,}".replace(",", "{,}")


def _tex_pow10(x: float) -> str:
    exponent = round(math.log10(x))
    return f"10^{{{exponent}}}" if 10.0**exponent == x else _tex_int(round(x))


def fl_bandwidth_equations(n_params, bits_per_param, *, download_bps, upload_bps,
                           time_limit_s):
    """The two inequalities of exercise 1's solution, as LaTeX (IPython ``Math``)."""
    from IPython.display import Math

    # Checks every input as max_participants does; then the checked, plain values.
    bits = bandwidth.max_participants(n_params, bits_per_param=bits_per_param,
                                      download_bps=download_bps, upload_bps=upload_bps,
                                      time_limit_s=time_limit_s).model_bits
    time_limit_s = float(time_limit_s)
    out = []
    for bps in (float(download_bps), float(upload_bps)):
        bound = time_limit_s * bps / bits
        out.append(Math(
            rf"n \cdot {_tex_int(bits)}\ \text{{bit}} \le {time_limit_s:g}\ \text{{s}}"
            rf" \cdot {_tex_pow10(bps)}\ \tfrac{{\text{{bit}}}}{{\text{{s}}}}"
            rf"\quad\Longrightarrow\quad n \le "
            + f"{bound:,.1f}".replace(",", "{,}")))
    return tuple(out)


def fl_cost_equation(n_params, *, rounds, clients_per_round, usd_per_gib, bytes_per_param):
    """Exercise 2's cost formula with the numbers filled in, as LaTeX (``Math``)."""
    from IPython.display import Math

    usd = costs.fl_download_cost(n_params, rounds=rounds, clients_per_round=clients_per_round,
                                 usd_per_gib=usd_per_gib, bytes_per_param=bytes_per_param)
    per_client = _tex_int(round(costs.fl_download_bytes(n_params, rounds=1, clients_per_round=1,
                                                        bytes_per_param=bytes_per_param)))
    rounds, clients_per_round = int(rounds), int(clients_per_round)  # checked above
    return Math(
        rf"C_\text{{FL}} = {_tex_int(rounds)}\ \text{{rounds}} \cdot {_tex_int(clients_per_round)}"
        rf"\ \tfrac{{\text{{clients}}}}{{\text{{round}}}} \cdot {per_client}\ \tfrac{{\text{{B}}}}"
        rf"{{\text{{client}}}} \cdot \frac{{\${usd_per_gib:g}}}{{2^{{30}}\ \text{{B}}}}"
        rf" \approx \${usd:,.2f}")
