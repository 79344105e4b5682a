"""Predictions and self-checks of exercises 1-3, their answers from the chapters' own runs.

Each function takes what the chapter computed (so the graded answer is the
build's own number) and returns a :class:`~dmlbook.selfcheck.SelfCheck` to
show in a ``remove-input`` cell *before* the evidence that answers it.
"""

from __future__ import annotations

from . import predictions, selfcheck

__all__ = ["ex1_symmetric", "ex1_step", "ex2_dl_factor", "ex2_half_precision",
           "ex3_same_parameters", "ex3_server_models", "ex3_loss", "ex3_subquestion"]


def ex1_symmetric(n_symmetric: int):
    """How many participants if the upload were as fast as the download."""
    return predictions.predict_number(
        "predict-ex1-symmetric", "Predict: if the server's upload were as fast as its "
        "download (1 Gbit/s both ways), how many participants would fit?",
        answer=n_symmetric, unit="participants", rel_tolerance=0.001,
        reveal=f"Both links then allow {n_symmetric:,} participants: ten times the "
               "sheet's answer, because the slow link was ten times slower.",
        label="Your prediction (participants)")


def ex1_step(step_s: float):
    """Order of magnitude of one measured local SGD step."""
    bins = (("more than 1 s", 1.0, float("inf")), ("between 0.1 s and 1 s", 0.1, 1.0),
            ("between 10 ms and 100 ms", 0.01, 0.1), ("less than 10 ms", 0.0, 0.01))
    options = [(text, low <= step_s < high,
                f"The build measured {step_s * 1e3:.1f} ms for one step of 32 images.")
               for text, low, high in bins]
    return predictions.predict_choice(
        "predict-ex1-step", "Predict: the sheet assumes a local step takes 60 s. How long "
        "does one SGD step of this LeNet on 32 images take on the machine that built "
        "this page?", options,
        reveal=f"{step_s * 1e3:.1f} ms (the fastest of 20 repeats).")


def ex2_dl_factor(factor: float, nodes: int, degree: int):
    """How many times FL's total traffic DL moves per round."""
    return predictions.predict_number(
        "predict-ex2-dl-factor", f"Predict: {nodes} DL nodes each send their model to "
        f"{degree} neighbours per round. FL's {nodes} clients each download and upload "
        "one model per round. How many times FL's total traffic (downloads plus uploads) "
        "does DL move?", answer=factor, unit="times FL's traffic", rel_tolerance=0.01,
        mistakes={2 * factor: "that compares DL with FL's downloads only; count FL's "
                              "uploads too, like for like."},
        reveal=f"{factor:g} times: {nodes * degree:,} model transfers per round against "
               f"FL's {2 * nodes:,}.", label="Your prediction (times)")


def ex2_half_precision(usd_16: float):
    """The bill with 16-bit parameters."""
    return predictions.predict_number(
        "predict-ex2-half", "Predict: what would the sheet's bill be, in US dollars, if "
        "every parameter travelled as a 16-bit float?", answer=usd_16, unit="US dollars",
        rel_tolerance=0.01, reveal=f"${usd_16:.2f}: half the bytes, half the bill.",
        label="Your prediction (US dollars)")


def ex3_same_parameters(max_diff: float, rounds: int, seeds: int):
    """Do the three schemes end with the same parameters?"""
    return predictions.predict_choice(
        "predict-ex3-same", f"Predict: a parameter server, a naive and a ring all-reduce "
        f"train the same model from the same seed for {rounds} rounds. How do their "
        "parameters compare?",
        [("Bit for bit the same", False, "Not quite: the sums are added in a different "
          "order, and float addition is not associative."),
         ("The same up to float rounding", True, "The largest difference is at the level "
          "of float32 rounding."),
         ("Visibly different: the ring's chunks lose precision", False,
          "No chunk is rounded or compressed; only the order of the additions differs.")],
        reveal=f"The largest difference over {seeds} seeds was {max_diff:.1e}.")


def ex3_server_models(n_workers: int, server_models: float):
    """How many models the one server sends per round."""
    return predictions.predict_number(
        "predict-ex3-server", f"Predict: with {n_workers} workers, how many model-sized "
        "messages does the one parameter server send per round?",
        answer=server_models, unit="models", rel_tolerance=1e-6,
        mistakes={2 * server_models: "that counts what it receives too; count what it sends."},
        reveal=f"{server_models:.0f}: one new model to each worker, counted by the ledger.",
        label="Your prediction (models)")


def ex3_loss(ring_stalls: str, ps_stalls: str, naive_stalls: str, drop: float):
    """Which scheme loses most rounds to message loss."""
    return predictions.predict_choice(
        "predict-ex3-loss", f"Predict: each message is lost with probability {drop:.0%} "
        "and nothing is retransmitted. Which scheme makes no progress in the most rounds?",
        [("The parameter server (one server)", False, "The server averages the gradients "
          "that arrive; it only needs one."),
         ("The naive all-reduce", False, "Each worker averages what reached it; its copies "
          "drift apart but every round updates."),
         ("The ring all-reduce", True, "Every round needs all its 2n(n-1) chunks: one lost "
          "chunk stalls the whole round.")],
        reveal=f"Rounds without progress: ring {ring_stalls}, PS {ps_stalls}, naive "
               f"{naive_stalls}.")


_SUB = {
    1: ("selfcheck-ex3-1", "Sub-question 1: why do a synchronous parameter server and an "
        "all-reduce compute the same thing?",
        [("Both average the same n gradients, computed at the same parameters, and take "
          "the same step", True, "Only the route of the data and the order of the additions "
          "differ."),
         ("Both send the same number of bytes", False, "They do not: the one server sends n "
          "models per round, a ring worker under 2."),
         ("Both have a node that holds the latest model", False, "True, but that is not "
          "why their steps agree; an asynchronous parameter server has one too and "
          "computes something else.")]),
    3: ("selfcheck-ex3-3", "Sub-question 3: in a ring all-reduce, what grows with the "
        "number of workers n?",
        [("The bytes each worker sends per round", False, "They stay below two models: "
          "2(n-1)/n of one."),
         ("The number of sequential steps, so the latency term", True, "2(n-1) messages "
          "one after another: 2(n-1) alphas per round."),
         ("The gradient each worker computes", False, "A worker's gradient step does not "
          "depend on n.")]),
    4: ("selfcheck-ex3-4", "Sub-question 4: a worker crashes mid-training. What happens in "
        "the book's model of a ring all-reduce?",
        [("Nothing: the ring has no single point of failure", False, "Every member is on "
          "the ring's path: the chunks it should pass on never arrive."),
         ("The ring stalls until it is rebuilt without the dead worker", True, "Then the "
          "survivors go on; MPI and NCCL instead abort the collective, and the job "
          "restarts (elastic training)."),
         ("Training stops for good", False, "That is a parameter server with one server and "
          "no failover, when the server crashes.")]),
}


def ex3_subquestion(number: int):
    """The self-check of exercise 3's sub-question 1, 3 or 4 (2 is ``for_exercise(3)``)."""
    if number not in _SUB:
        raise ValueError(f"number must be 1, 3 or 4 (2 is selfcheck.for_exercise(3)), "
                         f"got {number!r}")
    check_id, question, options = _SUB[number]
    return selfcheck.choice(check_id, question, options)
