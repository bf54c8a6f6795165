"""fanout-py: a Python agent that delegates to other agents through the
host (WIT `runway:agent` `orchestration` (since 0.1.2), through the thin helpers
of `orchestrate.py`), as the Rust SDK's `ctx.parallel`,
`ctx.first_success` and `ctx.cancel` do. By the run's action:

- `all` (or `run`): two `probe` children at once — `ok`, and `locks`
  asking for the locks the input names (`{"locks": [["DATASET", "shared"
  | "exclusive"], ...]}`, each taken at once if free) — joined all;
- `first-success`: a `probe` that fails and one that succeeds, raced; then
  joined again to see how each ended;
- `cancel`: a `probe` that would sleep ten minutes, cancelled and joined
  (at most a minute); then what the host refuses: a delegation to an agent
  the grants do not name, and a cancel of a runway not this run's child;
- `quorum`: three `probe`s (`ok`, `fail`, `ok`) until two succeeded;
- `chain`: `probe` `locks` (the input's locks), then `probe` `ok` given
  its output as input; the last step is the winner.

Output: `{"winner": CHILD | null, "results": [CHILD, ...], "refused":
["KIND: MESSAGE", ...]}`, a CHILD being `{"runway", "agent", "state",
"output", "reason"}` (`output` as JSON).

Built by `runway build plugins/fanout-py` (componentize-py).
"""
import json
import re

import wit_world
from componentize_py_types import Err
from wit_world.imports import context
from wit_world.imports.types import Error_Invalid

from orchestrate import cancel, chain, delegate, describe, join, parallel, progress, to


def said(err: Err) -> str:
    """A refusal as `KIND: MESSAGE`, the WIT case's name in kebab case."""
    kind = re.sub(r"(?<!^)(?=[A-Z])", "-", type(err.value).__name__.removeprefix("Error_"))
    return f"{kind.lower()}: {err.value.value}"


def input_locks(info):
    """The locks the input names, `[["DATASET", "MODE"], ...]`."""
    try:
        return json.loads(info.input or b"{}").get("locks", [])
    except (ValueError, AttributeError) as e:
        raise Err(Error_Invalid(f"input: {e}"))


def fan_out(info):
    children = parallel(to("probe", "ok"), to("probe", "locks", locks=input_locks(info)))
    progress(1, 2, "delegated")
    return None, children.join_all(), []


def race(_info):
    children = parallel(to("probe", "fail"), to("probe", "ok"))
    progress(1, 2, "racing")
    winner = describe(children.first_success())
    return winner, children.join_all(), []


def cancelled(info):
    sleeper = delegate(to("probe", "slow-first"))
    cancel([sleeper])
    progress(1, 2, "cancelled")
    results = join([sleeper], timeout_ms=60_000)
    refused = []
    for attempt in (lambda: parallel(to("summary")), lambda: cancel([info.runway + ".99"])):
        try:
            attempt()
        except Err as e:
            refused.append(said(e))
    return None, results, refused


def quorum(_info):
    children = parallel(to("probe", "ok"), to("probe", "fail"), to("probe", "ok"))
    return None, children.quorum(2), []


def pipeline(info):
    last = chain(to("probe", "locks", locks=input_locks(info)), to("probe", "ok"))
    return describe(last), [], []


ACTIONS = {"all": fan_out, "run": fan_out, "first-success": race, "cancel": cancelled,
           "quorum": quorum, "chain": pipeline}


class WitWorld(wit_world.WitWorld):
    def run(self) -> bytes:
        info = context.info()
        action = ACTIONS.get(info.action)
        if action is None:
            raise Err(Error_Invalid(f"fanout-py: unknown action {info.action!r}"))
        winner, results, refused = action(info)
        progress(2, 2, "joined")
        out = {"winner": winner, "results": [describe(r) for r in results], "refused": refused}
        return json.dumps(out, separators=(",", ":")).encode()
