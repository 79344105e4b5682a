#!/usr/bin/env bash
# Mutation testing (issue #27 part 5): `make mutants`, never part of `make test`.
#
# mutmut 2 (pinned in .venv-mutants, its own environment: the book's .venv is
# not touched) rewrites the module under test in place, one mutant at a time,
# and runs the given fast test files against it with the book's .venv. It
# works on a scratch copy of the repository, so the working tree is never
# left mutated. One module per line of MODULES below: "module.py: test files".
# Prints, per module, the run time and the counts of killed / survived /
# timed-out / suspicious mutants, and keeps each module's survivors as a diff
# under $OUT (default _build/mutants). mutmut 2 counts only exit status 1 as a
# failing run; "|| exit 1" makes every failure (an import error is status 2 or 4)
# kill the mutant.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$ROOT/_build/mutants}
PY=${PY:-$ROOT/.venv/bin/python}
MUTMUT=${MUTMUT:-$ROOT/.venv-mutants/bin/mutmut}
S=tests/test_hostile_survivors.py V=tests/test_hostile_values.py
MODULES=${MODULES:-"faults.py: tests/test_faults.py tests/test_faults_contract.py tests/test_dpsgd_reference.py tests/test_allreduce_reference.py $S::test_straggler_probability_is_the_share_that_straggles $S::test_loss_and_straggler_draws_are_independent_streams $S::test_faults_default_seed_is_zero
collectives.py: tests/test_collectives.py tests/test_allreduce_vectorised.py tests/test_allreduce_reference.py tests/test_dpsgd_reference.py
ledger.py: tests/test_ledger.py tests/test_ledger_contract.py $S::test_counts_only_ledger_extend_keeps_the_per_node_counts $S::test_gossip_received_per_cycle_counts_delivered_messages_only
check/ex1_participants.py: tests/test_check_ex1_contract.py tests/test_check.py tests/test_check_tasks.py tests/test_check_hostile.py -k \"ex1 or participants or binding\"
gossip.py: tests/test_defaults.py tests/test_gossip.py tests/test_gossip_contract.py tests/test_gossip_reference.py tests/test_units_contract.py::test_every_module_bound_on_the_lecturers_page_has_its_value $S::test_gossip_received_per_cycle_counts_delivered_messages_only $S::test_balanced_peer_sampler_never_picks_the_node_itself tests/test_step_cost.py tests/test_evaluation_cost.py tests/test_check_hooks.py::test_gossip_average_with_the_reference_handlers_keeps_the_sum
dpsgd.py: tests/test_dpsgd.py tests/test_dpsgd_contract.py tests/test_dpsgd_reference.py tests/test_check_hooks.py::test_run_dpsgd_with_the_reference_round_agrees tests/test_step_cost.py tests/test_evaluation_cost.py
federated.py: tests/test_defaults.py tests/test_federated.py tests/test_federated_reference.py tests/test_fedavg_cohorts.py tests/test_federated_contract.py tests/test_scenarios.py::test_ex4_explorer_holds_the_tables_settings $S::test_fedavg_step_error_is_relative_to_the_exact_step tests/test_step_cost.py tests/test_evaluation_cost.py tests/test_allreduce_contract.py::test_results_made_without_a_ledger_get_an_empty_one
engine.py: tests/test_engine.py tests/test_strategies.py tests/test_hostile_errors.py tests/test_fedavg_cohorts.py::test_epoch_indices_cover_each_example_once_per_pass
allreduce.py: tests/test_defaults.py tests/test_allreduce.py tests/test_allreduce_vectorised.py tests/test_allreduce_contract.py tests/test_allreduce_reference.py $S::test_ps_failover_counts_the_new_servers_own_gradient tests/test_step_cost.py tests/test_evaluation_cost.py
units.py: tests/test_units.py tests/test_units_contract.py $V::test_format_bytes_at_each_unit $V::test_format_bps_at_each_unit $V::test_choices_take_numpy_values_and_return_the_plain_choice $V::test_choices_refuse_other_kinds $V::test_checkers_return_plain_python_numbers $S::test_a_bounds_maximum_is_inclusive"}

mkdir -p "$OUT"
echo "module | mutants | killed | survived | timeout | suspicious | score | minutes" > "$OUT/summary.md"
while IFS= read -r line; do
    [ -z "$line" ] && continue
    module=${line%%:*}
    tests=${line#*:}
    name=${module%.py}; name=${name//\//_}  # check/ex1_participants.py -> check_ex1_participants
    work=$(mktemp -d)
    # The tracked files as they are now (committed or not), plus the venv link.
    (cd "$ROOT" && git ls-files -co --exclude-standard | grep -v -e '^\.venv' -e '^_vendor' \
        | while IFS= read -r f; do [ -f "$f" ] && cp --parents "$f" "$work"; done)
    ln -s "$ROOT/.venv" "$work/.venv"
    start=$(date +%s)
    (cd "$work" && PYTHONPATH="$work" "$MUTMUT" run --paths-to-mutate "dmlbook/$module" \
        --runner "bash -c '$PY -m pytest -x -q -p no:cacheprovider $tests || exit 1'" \
        --no-progress --simple-output > "$OUT/$name.log" 2>&1 || true)
    minutes=$(( ($(date +%s) - start + 30) / 60 ))
    (cd "$work" && "$MUTMUT" results > "$OUT/$name.results" 2>&1 || true
     for id in $("$MUTMUT" result-ids survived 2>/dev/null); do "$MUTMUT" show "$id"; done \
        > "$OUT/$name.survivors.diff" 2>&1 || true)
    "$PY" - "$work" "$module" "$minutes" >> "$OUT/summary.md" <<'PYEOF'
import sqlite3, sys
work, module, minutes = sys.argv[1:]
db = sqlite3.connect(f"{work}/.mutmut-cache")
rows = dict(db.execute("select status, count(*) from Mutant group by status").fetchall())
killed, survived = rows.get("ok_killed", 0), rows.get("bad_survived", 0)
timeout, suspicious = rows.get("bad_timeout", 0), rows.get("ok_suspicious", 0)
total = sum(rows.values())
caught = killed + timeout + suspicious
score = f"{100 * caught / total:.0f} %" if total else "-"
print(f"{module} | {total} | {killed} | {survived} | {timeout} | {suspicious} | {score} | {minutes}")
PYEOF
    rm -rf "$work"
done <<< "$MODULES"
cat "$OUT/summary.md"
