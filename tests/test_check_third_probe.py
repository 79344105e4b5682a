"""The third hostile probe of the checks (session 12), each finding as the behaviour that
must hold: a ✓ only for a right function, a right function always ✓, the kernel as it was.
"""

import builtins
import functools
import os
import signal
import site
import sys
import threading
import time
import warnings

import pytest
import torch

import dmlbook.allreduce
from dmlbook import check
from dmlbook.check import guard, harness, reference


def peek():
    """What a function finds under the name ``expected`` on the check's stack."""
    frame = sys._getframe(2)
    while frame is not None:
        if "expected" in frame.f_locals:
            return frame.f_locals["expected"]
        frame = frame.f_back
    return None


# Each returns what it found on the stack; a wrong answer where it finds nothing.
PEEKERS = {
    "participants": lambda *args: peek(),
    "download_cost": lambda *args: peek(),
    "cumulative_bill": lambda *args: peek(),
    "ring_messages": lambda n: peek(),
    "dpsgd_messages": lambda *args: peek(),
    "metropolis_weights": lambda A: peek(),
}


@pytest.mark.parametrize("name", PEEKERS)
def test_the_answer_is_worked_out_after_the_call_not_read_off_the_stack(name):
    assert not getattr(check, name)(PEEKERS[name]).passed


def test_no_answer_is_on_the_stack_of_binding_link():
    found = []

    def right_and_peeking(*args):
        found.append(peek())
        return reference.binding_link(*args)

    assert check.binding_link(right_and_peeking).passed
    assert found and set(found) == {None}


def test_a_link_name_whose_equality_lies_is_not_the_right_one():
    class Liar(str):
        __eq__ = lambda self, other: True  # noqa: E731
        __ne__ = lambda self, other: False  # noqa: E731
        __hash__ = str.__hash__
        __str__ = lambda self: self  # noqa: E731

    result = check.binding_link(lambda *args: (reference.binding_link(*args)[0], Liar("upload")))
    assert (result.passed, result.mistake) == (False, "wrong link")


# --- the time limit ----------------------------------------------------------------------

TIMERS = (signal.ITIMER_PROF, signal.ITIMER_REAL)


def _handlers():
    return signal.getsignal(signal.SIGPROF), signal.getsignal(signal.SIGALRM)


def _disarmed(handlers) -> bool:
    return all(signal.getitimer(t) == (0.0, 0.0) for t in TIMERS) and _handlers() == handlers


@pytest.mark.parametrize("limit", [-1, float("inf"), float("nan"), True, "10", 3601])
def test_a_time_limit_out_of_range_is_refused_before_anything_is_armed(limit):
    handlers = _handlers()
    with pytest.raises(ValueError, match=r"^time_limit_s must be a finite number >= 0 and "
                                         r"<= 3600, got .* \(seconds; 0 turns the limit off\)$"):
        check.participants(reference.participants, time_limit_s=limit)
    assert _disarmed(handlers)


def test_a_limit_that_runs_out_while_it_is_armed_is_still_disarmed(monkeypatch):
    real_setitimer, handlers = signal.setitimer, _handlers()

    def fires_at_once(which, seconds, interval=0.0):
        real_setitimer(which, seconds, interval)
        if seconds:  # the timer fires before the arming is done
            raise harness.TimeUp()

    monkeypatch.setattr(signal, "setitimer", fires_at_once)
    result = check.participants(reference.participants, time_limit_s=5)
    monkeypatch.undo()
    assert (result.passed, result.mistake) == (False, "time limit")
    assert _disarmed(handlers)


def _spins_once_with(turn_off):
    spun = []

    def fn(*args):
        if not spun:
            spun.append(turn_off())
            end = time.process_time() + 1.0 + 2 * harness.LIMIT_GRACE_S
            while time.process_time() < end:
                pass
        return reference.participants(*args)
    return fn


TURN_OFFS = {
    "signals ignored": lambda: [signal.signal(signal.SIGPROF, signal.SIG_IGN),
                                signal.signal(signal.SIGALRM, signal.SIG_IGN)],
    "timers stopped": lambda: [signal.setitimer(signal.ITIMER_PROF, 0),
                               signal.setitimer(signal.ITIMER_REAL, 0)],
}


@pytest.mark.parametrize("how", TURN_OFFS)
def test_a_function_that_turns_the_limit_off_does_not_pass(how):
    handlers = _handlers()
    result = check.participants(_spins_once_with(TURN_OFFS[how]), time_limit_s=1)
    assert (result.passed, result.mistake) == (False, "time limit")
    assert _disarmed(handlers)


def test_empty_writes_keep_nothing():
    capture = harness._Capture()
    for _ in range(100_000):
        capture.write("")
    assert (capture.kept, capture.kept_chars, capture.total) == ([], 0, 0)
    capture.write("x" * (harness.MAX_OUTPUT_CHARS + 5))
    capture.write("y")
    assert len(capture.kept) == 1 and capture.kept_chars == harness.MAX_OUTPUT_CHARS
    assert capture.total == harness.MAX_OUTPUT_CHARS + 6


# --- blame and the kernel's state --------------------------------------------------------

def test_a_result_on_the_meta_device_is_the_students_mistake():
    result = check.fedavg(lambda *args: reference.fedavg(*args).to("meta"))
    assert (result.passed, result.mistake) == (False, "not a tensor")
    assert "a tensor on the meta device has none" in result.feedback


def test_a_default_device_set_by_the_function_changes_neither_the_verdict_nor_the_kernel():
    def sets_the_default_device(*args):
        torch.set_default_device("meta")
        return reference.dpsgd_messages(*args)

    try:
        result = check.dpsgd_messages(sets_the_default_device)
        assert result.passed, result.feedback  # its simulator runs on the CPU all the same
        assert torch.get_default_device() == torch.device("cpu")
    finally:
        torch.set_default_device(None)


def test_a_package_function_rebound_in_the_kernel_stops_the_check(monkeypatch):
    monkeypatch.setattr(dmlbook.allreduce, "ring_allreduce", lambda *args, **kwargs: None)
    result = check.ring_messages(reference.ring_messages)
    assert (result.passed, result.mistake) == (False, "changed the package")
    assert result.feedback.startswith("✗ ring_messages: not judged: the kernel has rebound "
                                      "dmlbook.allreduce.ring_allreduce.")


def test_a_function_that_rebinds_torch_does_not_pass_and_is_undone():
    original = torch.allclose

    def rebinds(*args):
        torch.allclose = lambda *a, **k: True  # noqa: E731
        return reference.participants(*args)

    try:
        result = check.participants(rebinds)
        assert (result.passed, result.mistake) == (False, "changed the package")
        assert "your function rebound torch.allclose" in result.feedback
        assert torch.allclose is original
    finally:
        torch.allclose = original


def test_without_the_guard_a_rebinding_reaches_the_simulator(monkeypatch):
    # Why the guard: the check's own run of train_data_parallel uses the rebound ring.
    monkeypatch.setattr(guard, "GUARD_BINDINGS", False)
    monkeypatch.setattr(dmlbook.allreduce, "ring_allreduce", lambda *args, **kwargs: None)
    result = check.ring_messages(reference.ring_messages)
    assert not result.passed and result.mistake != "changed the package"
    assert "train_data_parallel's ring" in result.feedback


def test_the_kernels_default_device_is_kept_and_the_check_runs_on_the_cpu():
    torch.set_default_device("meta")
    try:
        result = check.dpsgd_messages(reference.dpsgd_messages)
        after = torch.get_default_device()
    finally:
        torch.set_default_device(None)
    assert result.passed, result.feedback
    assert after.type == "meta"


# --- quantize past a byte, and merges in the model's precision ---------------------------

def _levels(x, bits):
    lo, hi = x.min(), x.max()
    return lo, hi, (hi - lo) / (2**bits - 1)


def quantize_by_nearest_of_linspace(x, bits):
    lo, hi, _ = _levels(x, bits)
    if hi == lo:
        return x.clone()
    levels = torch.linspace(float(lo), float(hi), 2**bits)
    right = torch.searchsorted(levels, x).clamp(1, len(levels) - 1)
    below, above = levels[right - 1], levels[right]
    return torch.where(x - below <= above - x, below, above)


def quantize_by_scale(x, bits):
    lo, hi, _ = _levels(x, bits)
    if hi == lo:
        return x.clone()
    scale = (2**bits - 1) / (hi - lo)
    return torch.round((x - lo) * scale) / scale + lo


def quantize_in_float64(x, bits):
    lo, hi, step = _levels(x.double(), bits)
    if hi == lo:
        return x.clone()
    return (lo + torch.round((x.double() - lo) / step) * step).float()


@pytest.mark.parametrize("fn", [quantize_by_nearest_of_linspace, quantize_by_scale,
                                quantize_in_float64])
def test_right_quantizers_pass_at_every_width(fn):
    # Their arithmetic rounds differently: at a tie between two levels either is right.
    result = check.quantize(fn)
    assert result.passed, result.feedback
    assert "every width from 1 to 16 bits" in result.feedback


def test_codes_kept_in_a_byte_fail_past_8_bits():
    def quantize_into_uint8(x, bits):
        lo, hi, step = _levels(x, bits)
        if hi == lo:
            return x.clone()
        return lo + torch.round((x - lo) / step).to(torch.uint8).float() * step

    result = check.quantize(quantize_into_uint8)
    assert (result.passed, result.mistake) == (False, "wrong value")
    assert "random case 21 of 36" in result.feedback  # the first case of 9 bits


def test_a_float64_merge_done_in_float32_loses_precision():
    result = check.gossip_merge(lambda a, b: ((a.float() + b.float()) / 2).to(a.dtype))
    assert (result.passed, result.mistake) == (False, "lost precision")


def test_a_numpy_array_of_another_dtype_is_a_wrong_dtype():
    result = check.gossip_merge(lambda a, b: ((a + b) / 2).numpy().astype("float32"))
    assert (result.passed, result.mistake) == (False, "wrong dtype")
    assert "got:      a torch.float32 ndarray" in result.feedback


@pytest.mark.parametrize("merge", [lambda a, b: a + (b - a) / 2,
                                   lambda a, b: 0.5 * a + 0.5 * b,
                                   lambda a, b: a.add_(b).div_(2),
                                   lambda a, b: ((a + b) / 2).numpy()])
def test_right_merges_pass_in_float64_too(merge):
    result = check.gossip_merge(merge)
    assert result.passed, result.feedback


# --- the ring on the marking network -----------------------------------------------------

def test_a_ring_that_tries_the_network_with_a_message_of_its_own_does_not_pass():
    def tries_then_rings(chunks):
        check.send(0, 1, chunks[0][0])  # one message more than a ring's, to look
        return reference.ring_allreduce(chunks)

    result = check.ring_allreduce(tries_then_rings)
    assert (result.passed, result.mistake) == (False, "messages")
    assert result.feedback.splitlines()[1].endswith("small whole numbers: messages sent")


def test_the_marking_network_counts_the_messages_too(monkeypatch):
    from dmlbook.check import ex3_ring_allreduce

    seen = []
    real = ex3_ring_allreduce._ring_messages_checked
    monkeypatch.setattr(ex3_ring_allreduce, "_ring_messages_checked",
                        lambda case, *args: seen.append(case) or real(case, *args))
    assert check.ring_allreduce(reference.ring_allreduce).passed
    assert sum("a network that adds" in case for case in seen) == 2


def test_a_ring_result_on_the_meta_device_is_a_wrong_shape_not_the_checks_error():
    result = check.ring_allreduce(lambda chunks: [[c.to("meta") for c in node]
                                                  for node in reference.ring_allreduce(chunks)])
    assert (result.passed, result.mistake) == (False, "wrong shape")


def test_an_alarm_that_interrupts_the_disarming_is_disarmed_again(monkeypatch):
    # A harness.py mutant of the seed-45 sample (`continue` -> `break`) survived: the last
    # alarm can land while the timers are being stopped; then they are stopped again.
    real_setitimer, handlers, interrupted = signal.setitimer, _handlers(), []

    def alarm_while_stopping(which, seconds, interval=0.0):
        real_setitimer(which, seconds, interval)
        if seconds == 0 and not interrupted:
            interrupted.append(which)
            raise harness.TimeUp()

    monkeypatch.setattr(signal, "setitimer", alarm_while_stopping)
    result = check.participants(reference.participants)
    monkeypatch.undo()
    assert interrupted and result.passed, result.feedback
    assert _disarmed(handlers)


# --- the review of the guard: no refusal of a right student ------------------------------

def test_a_librarys_own_rebinding_during_a_check_is_left_alone():
    # torch._dynamo wraps torch.manual_seed when a kernel's first optimizer steps.
    original = torch.manual_seed

    def steps_like_a_first_optimizer(*args):
        torch.manual_seed = functools.partial(original)  # library code, rebound by a library
        return reference.participants(*args)

    try:
        result = check.participants(steps_like_a_first_optimizer)
        assert result.passed, result.feedback
        assert isinstance(torch.manual_seed, functools.partial)  # not undone
    finally:
        torch.manual_seed = original


def test_the_repls_last_value_in_builtins_does_not_stop_a_check(monkeypatch):
    monkeypatch.setattr(builtins, "_", lambda: None, raising=False)  # a function displayed
    assert check.participants(reference.participants).passed


def test_an_object_that_cannot_be_asked_does_not_stop_a_check(monkeypatch):
    class Proxy:
        def __call__(self):
            return None

        def __getattr__(self, name):
            raise RuntimeError("not loaded")

    monkeypatch.setattr(builtins, "lazy_tool", Proxy(), raising=False)
    assert check.participants(reference.participants).passed


def test_the_user_site_and_generated_library_code_are_the_librarys():
    assert guard.library_file(os.path.join(site.getusersitepackages(), "x", "y.py"))
    assert guard.library_file(os.path.join(os.path.dirname(os.path.dirname(torch.__file__)),
                                           "torch", "x.py"))
    assert not guard.library_file("/tmp/ipykernel_1/123.py")
    frames = {}
    for module_name in ("dmlbook.ledger", "__main__"):
        namespace = {"__name__": module_name, "sys": sys}
        exec(compile("def here():\n    return sys._getframe()\n", "<string>", "exec"), namespace)
        frames[module_name] = namespace["here"]()
    assert guard._library_frame(frames["dmlbook.ledger"])  # a dataclass's generated method
    assert not guard._library_frame(frames["__main__"])


def test_off_the_main_thread_there_is_no_limit_and_no_refusal():
    results = []
    thread = threading.Thread(target=lambda: results.append(
        check.participants(_spins_once_with(lambda: None), time_limit_s=1)))
    thread.start()
    thread.join()
    assert results[0].passed, results[0].feedback


# --- guard.py's survivors of the seed-46 sample ------------------------------------------

class _NotebookCallable:
    """An instance of a class from outside the package: callable, like a function."""

    def __call__(self, *args, **kwargs):
        return True


@pytest.mark.parametrize("module, name", [("builtins", "divmod"), ("math", "isclose"),
                                          ("numpy", "allclose"), ("torch", "allclose"),
                                          ("torch.nn.functional", "mse_loss")])
def test_each_watched_module_is_guarded(monkeypatch, module, name):
    monkeypatch.setattr(sys.modules[module], name, _NotebookCallable())
    result = check.participants(reference.participants)
    assert (result.passed, result.mistake) == (False, "changed the package")
    assert f"the kernel has rebound {module}.{name}." in result.feedback


@pytest.mark.parametrize("module_name", ["__main__", "a_module_never_imported"])
def test_a_class_of_the_notebook_or_of_no_module_is_foreign(monkeypatch, module_name):
    made_in_a_cell = type("Made", (), {"__call__": lambda self: None, "__module__": module_name})
    monkeypatch.setattr(dmlbook.allreduce, "ring_allreduce", made_in_a_cell())
    assert check.ring_messages(reference.ring_messages).mistake == "changed the package"


def test_a_class_from_a_namespace_package_of_ones_own_is_foreign(monkeypatch, tmp_path):
    (tmp_path / "mywork").mkdir()  # no __init__.py: a namespace package, with no __file__
    (tmp_path / "mywork" / "tools.py").write_text(
        "class Tool:\n    def __call__(self, *args):\n        return None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from mywork.tools import Tool

    monkeypatch.setattr(dmlbook.allreduce, "ring_allreduce", Tool())
    assert check.ring_messages(reference.ring_messages).mistake == "changed the package"
    # A class that names a path below its module (mywork.tools.inner is no module):
    # the nearest loaded module is mywork.tools, not the namespace package above it.
    Tool.__module__ = "mywork.tools.inner"
    assert check.ring_messages(reference.ring_messages).mistake == "changed the package"


def test_package_data_rebound_to_a_notebooks_object_is_guarded(monkeypatch):
    import dmlbook.sheet

    class Sheet:  # not callable: data, not a function
        pass

    monkeypatch.setattr(dmlbook.sheet, "SHEET", Sheet())
    result = check.participants(reference.participants)
    assert (result.passed, result.mistake) == (False, "changed the package")


def test_frozen_standard_library_code_is_the_librarys():
    # Python 3.11 freezes os and posixpath: their functions live in "<frozen ...>".
    assert guard.library_file(os.path.join.__code__.co_filename)
    assert not guard.foreign(os.path.join)


# The float64 merge's tolerance (rtol 1e-12, atol 1e-12), pinned from both sides: the
# session-13 mutation run of the lines changed by the third probe found them unpinned.
PRECISION_HINT = "average in the model's own dtype: a float64 model in float64."


def _shown(feedback, label):
    line = next(li for li in feedback.splitlines() if li.strip().startswith(label))
    return [float(v) for v in line.split("[", 1)[1].split("]")[0].split()]


def test_a_float64_merge_off_by_1_5e_12_relative_loses_precision_and_shows_it():
    def merge(a, b):
        out = (a + b) / 2
        return out * (1 + 1.5e-12) if out.dtype == torch.float64 else out

    result = check.gossip_merge(merge)
    assert (result.passed, result.mistake) == (False, "lost precision")
    assert f"Hint (lost precision): {PRECISION_HINT}" in result.feedback
    # 17 digits where 8 look equal: the student sees the difference.
    assert _shown(result.feedback, "expected:") != _shown(result.feedback, "got:")


def test_a_float64_merge_off_by_1_5e_12_absolute_loses_precision_where_it_shows():
    def merge(a, b):
        out = (a + b) / 2
        return out + 1.5e-12 if out.dtype == torch.float64 else out

    result = check.gossip_merge(merge)
    assert (result.passed, result.mistake) == (False, "lost precision")
    # Beyond 1e-12 + 1e-12 |x| only where |x| < 0.5: the rows shown hold such an entry.
    assert min(abs(v) for v in _shown(result.feedback, "expected:")) < 0.5


def test_the_report_shows_the_row_of_a_float64_merge_that_lost_precision():
    corrupted = []

    def merge(a, b):
        out = (a + b) / 2
        if out.dtype == torch.float64 and out.dim() == 2 and len(out) > 1 \
                and abs(float(out[-1, -1])) > 2:
            out[-1, -1] *= 1 + 1.5e-12  # beyond 1e-12 + 1e-12 |x| where |x| > 2
            corrupted.append(len(out) - 1)
        return out

    result = check.gossip_merge(merge)
    assert (result.passed, result.mistake) == (False, "lost precision")
    assert corrupted and f", row {corrupted[0]}" in result.feedback


def test_a_ring_off_by_1_5e_5_relative_is_wrong_after_right_messages():
    # The ring's tolerance is rtol 1e-5, atol 1e-4: on the first hand case, whose
    # sums reach 21 and 23, a relative error of 1.5e-5 is beyond it.
    def ring(chunks):
        return [[c * (1 + 1.5e-5) for c in node] for node in reference.ring_allreduce(chunks)]

    result = check.ring_allreduce(ring)
    assert (result.passed, result.mistake) == (False, "wrong value")
    assert "on 3 nodes, 6 numbers" in result.feedback
    # Its messages were a right ring's: the hint does not blame a chunk index.
    assert RIGHT_MESSAGES_HINT in result.feedback.splitlines()


def _relabelled_ring(scale=1.0):
    """The reference ring, except that node 1's first message is labelled as sent by
    node 0 (to node 1), though node 2 still adds what it delivered."""
    def ring(chunks):
        n = len(chunks)
        chunks = [[c.clone() for c in node] for node in chunks]
        for step in range(2 * (n - 1)):
            sent = [(k, ((k - step) if step < n - 1 else (k + 1 - step + n - 1)) % n)
                    for k in range(n)]
            received = [check.send(0 if (step, k) == (0, 1) else k,
                                   1 if (step, k) == (0, 1) else (k + 1) % n, chunks[k][c])
                        for k, c in sent]
            for (k, c), payload in zip(sent, received):
                dst = chunks[(k + 1) % n]
                dst[c] = dst[c] + payload if step < n - 1 else payload
        return [[c * scale for c in node] for node in chunks]
    return ring


def test_a_ring_whose_nodes_send_uneven_shares_is_not_a_ring():
    # Right values, right count, each message to its sender's successor: but node 0
    # sent 2 (n - 1) + 1 messages and node 1 one fewer.
    result = check.ring_allreduce(_relabelled_ring())
    assert (result.passed, result.mistake) == (False, "not a ring")
    lines = result.feedback.splitlines()  # the first case: 2 nodes, 2 messages each
    assert lines[1] == ("Case: ring_allreduce on 2 nodes, 4 numbers each cut into 2 chunks "
                        "of sizes [2, 2], small whole numbers: who sent the messages")
    assert "  expected: every node sends 2 (n - 1) = 2" in lines
    assert "  got:      node 0 sent 3" in lines


def test_a_wrong_result_after_uneven_shares_is_diagnosed_not_a_check_error():
    result = check.ring_allreduce(_relabelled_ring(scale=2.0))
    assert result.passed is False
    assert "error in dmlbook.check" not in result.feedback
    assert "value for value" not in result.feedback  # not the reference's messages


# quantize's tolerance, atol = (max - min) x 1e-6 + 1e-7 (plus rtol 1e-6), pinned from
# both of its terms on the first hand case, x = [0, 1, 2, 3] (range 3).
def test_a_quantizer_off_by_1_5e_6_of_the_range_is_wrong():
    from dmlbook.compression import quantize as right

    result = check.quantize(lambda x, bits: right(x, bits).values
                            + 1.5e-6 * float(x.max() - x.min()))
    assert (result.passed, result.mistake) == (False, "wrong value")
    assert "four values on the four levels of 2 bits" in result.feedback


def test_a_quantizer_off_by_3_15e_6_at_zero_of_a_range_of_3_is_wrong():
    from dmlbook.compression import quantize as right

    def quantizer(x, bits):
        out = right(x, bits).values.clone()
        if torch.equal(x, torch.tensor([0., 1., 2., 3.])):
            out[0] += 3.15e-6  # beyond 3 x 1e-6 + 1e-7, within 3 x 1e-6 + 2e-7
        return out

    result = check.quantize(quantizer)
    assert (result.passed, result.mistake) == (False, "wrong value")


def test_the_report_names_a_random_quantize_case_by_its_own_label():
    def uint8_codes(x, bits):  # right up to 8 bits: the first case of 9 bits fails
        lo, hi = x.min(), x.max()
        if hi == lo:
            return x.clone()
        step = (hi - lo) / (2**bits - 1)
        return lo + torch.round((x - lo) / step).to(torch.uint8).float() * step

    result = check.quantize(uint8_codes)
    case = next(li for li in result.feedback.splitlines() if li.startswith("Case: "))
    assert case.endswith("), random case 21 of 36")


def test_a_message_records_the_sum_of_what_was_sent_and_nan_where_there_is_none():
    from dmlbook.check import network

    with network.recording(transform=lambda p: p + 1) as net:
        check.send(0, 1, torch.tensor([1.5, 2.0]))  # the sum as sent, before the network
        check.send(0, 1, torch.arange(4))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check.send(0, 1, torch.ones(2, dtype=torch.complex64))
        assert not caught  # no "discards the imaginary part"
        check.send(0, 1, torch.ones(2, device="meta"))
    totals = [m.total for m in net.messages]
    assert totals[:2] == [3.5, 6.0]
    assert [m.moment for m in net.messages][:2] == [1.5 + 2 * 2.0, 0 + 1 * 2 + 2 * 3 + 3 * 4]
    assert all(t != t for t in totals[2:])  # NaN
    assert all(m.moment != m.moment for m in list(net.messages)[2:])


RIGHT_MESSAGES_HINT = (
    "Hint (wrong value): your messages are a right ring's, value for value: the chunk "
    "indices and the additions are right. What you returned is not what they delivered: "
    "return each node's chunks as the ring left them, with nothing changed after it.")
SHARE_HINT = (
    "Hint (not a ring): in a ring all-reduce every node sends one chunk in every step, "
    "2 (n - 1) messages each, so that every link carries the same share; a chain that "
    "starts every chunk at one node does not.")


def _ring_from_predecessor(chunks):
    """A right ring written from the receiver's side: node k's predecessor is k - 1,
    which for node 0 is Python's -1 (node n - 1). (From the session-13 review.)"""
    n = len(chunks)
    chunks = [[c.clone() for c in node] for node in chunks]
    for s in range(n - 1):
        got = [check.send(k - 1, k, chunks[k - 1][(k - 1 - s) % n]) for k in range(n)]
        for k in range(n):
            c = (k - 1 - s) % n
            chunks[k][c] = chunks[k][c] + got[k]
    for s in range(n - 1):
        got = [check.send(k - 1, k, chunks[k - 1][(k - s) % n]) for k in range(n)]
        for k in range(n):
            chunks[k][(k - s) % n] = got[k]
    return chunks


def test_a_right_ring_that_names_node_n_minus_1_as_minus_1_passes():
    result = check.ring_allreduce(_ring_from_predecessor)
    assert result.passed, result.feedback


def test_a_wrong_value_after_a_right_rings_messages_named_from_minus_1_is_not_a_chunk_index():
    def ring(chunks):
        return [[c * 2 for c in node] for node in _ring_from_predecessor(chunks)]

    result = check.ring_allreduce(ring)
    assert (result.passed, result.mistake) == (False, "wrong value")
    assert "your messages are a right ring's, value for value" in result.feedback


def _same_moment(c):
    """``c`` changed so that its sum changes and its position-weighted sum does not."""
    if c.numel() < 2:
        return c
    return c + torch.tensor([2.0, -1.0] + [0.0] * (c.numel() - 2))


@pytest.mark.parametrize("garble", [lambda c: c.flip(0), _same_moment],
                            ids=["same sum, reversed", "same weighted sum, other sum"])
def test_messages_that_differ_from_a_right_rings_are_not_called_right(garble):
    def ring(chunks):  # reduce-scatter sends each chunk garbled
        n = len(chunks)
        chunks = [[c.clone() for c in node] for node in chunks]
        for s in range(n - 1):
            got = [check.send(k, (k + 1) % n, garble(chunks[k][(k - s) % n]))
                   for k in range(n)]
            for k in range(n):
                c = (k - s) % n
                chunks[(k + 1) % n][c] = chunks[(k + 1) % n][c] + got[k]
        for s in range(n - 1):
            got = [check.send(k, (k + 1) % n, chunks[k][(k + 1 - s) % n]) for k in range(n)]
            for k in range(n):
                chunks[(k + 1) % n][(k + 1 - s) % n] = got[k]
        return chunks

    result = check.ring_allreduce(ring)
    assert result.passed is False
    assert "value for value" not in result.feedback


def test_a_chain_that_starts_every_chunk_at_node_0_is_not_a_ring():
    # 2 n (n - 1) one-chunk messages, each to the successor, right values: but node 0
    # sends n chunks in one step and node n - 1 none in the reduce (from the review).
    def chain(chunks):
        n = len(chunks)
        chunks = [[c.clone() for c in node] for node in chunks]
        for s in range(n - 1):
            got = [check.send(s, s + 1, chunks[s][j]) for j in range(n)]
            for j in range(n):
                chunks[s + 1][j] = chunks[s + 1][j] + got[j]
        for s in range(n - 1):
            k = (n - 1 + s) % n
            got = [check.send(k, (k + 1) % n, chunks[k][j]) for j in range(n)]
            for j in range(n):
                chunks[(k + 1) % n][j] = got[j]
        return chunks

    result = check.ring_allreduce(chain)
    assert (result.passed, result.mistake) == (False, "not a ring")
    assert SHARE_HINT in result.feedback.splitlines()


def test_numpy_and_torch_are_trusted_wherever_they_were_imported_from(monkeypatch, tmp_path):
    # On a cluster numpy may come from PYTHONPATH, outside every site-packages: its
    # folder is trusted by where the module was loaded from (from the guard55 run).
    import types

    for name in ("numpy", "torch"):
        fake = types.ModuleType(name)
        fake.__file__ = str(tmp_path / f"{name}_here" / name / "__init__.py")
        monkeypatch.setitem(sys.modules, name, fake)
    trusted = guard._trusted_dirs()
    for name in ("numpy", "torch"):
        assert os.path.normcase(str(tmp_path / f"{name}_here")) + os.sep in trusted


def _f64(*values):
    return torch.tensor(values, dtype=torch.float64)


@pytest.mark.parametrize("expected, actual, shown", [
    # 4 digits show the difference.
    (_f64(1.0, 2.0), _f64(1.5, 2.0), ("[1. 2.]", "[1.5 2. ]")),
    # 4 look equal: 8.
    (_f64(1.0, 2.0), _f64(1.00001, 2.0), ("[1. 2.]", "[1.00001 2. ]")),
    # 8 tell them apart with the small number shown as 0: no more is shown.
    (_f64(1000.0, 1e-12, 1.00001), _f64(1000.0, 1e-12, 1.00002),
     ("[1000. 0. 1.00001]", "[1000. 0. 1.00002]")),
    # 8 with small numbers shown as 0 look equal: small numbers in full.
    (_f64(1000.0, 1e-12), _f64(1000.0, 2e-12), ("[1.e+03 1.e-12]", "[1.e+03 2.e-12]")),
    (_f64(1000.0, 1e-12, 3.14159265358979), _f64(1000.0, 2e-12, 3.14159265358979),
     ("[1.00000000e+03 1.00000000e-12 3.14159265e+00]",
      "[1.00000000e+03 2.00000000e-12 3.14159265e+00]")),
    # 8 in full look equal: 17 (every digit pi needs, not 9 of them).
    (_f64(1000.0, 1.000000001e-12, 3.14159265358979e-12),
     _f64(1000.0, 1.000000002e-12, 3.14159265358979e-12),
     ("[1.00000000000000e+03 1.00000000100000e-12 3.14159265358979e-12]",
      "[1.00000000000000e+03 1.00000000200000e-12 3.14159265358979e-12]")),
], ids=["4 digits", "8 digits", "8 with small as 0", "small in full", "small in full, 8",
        "17 digits"])
def test_a_report_shows_each_pair_at_the_first_precision_that_tells_them_apart(
        expected, actual, shown):
    from dmlbook.check.display import shown_pair

    prefix = f"tensor of shape {tuple(expected.shape)}: "
    assert shown_pair(expected, actual, rtol=0, atol=0) == (prefix + shown[0],
                                                            prefix + shown[1])
