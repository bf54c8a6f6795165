"""Delegating from a Python agent in a line or two, as the Rust SDK's
`ctx.delegate`, `ctx.parallel(..).join_all()`, `ctx.first_success`,
`ctx.chain`, `ctx.cancel`, `ctx.handoff` and `ctx.progress` do: thin
wrappers over the generated `wit_world.imports.orchestration` (WIT
`runway:agent@0.1.2`), which an agent may also call directly.

    from orchestrate import to, parallel, first_success, describe
    results = parallel(to("probe", "ok"), to("probe", "locks", locks={"apps": "shared"})).join_all()
    winner = first_success(to("scorer-a", input=[1, 2]), to("scorer-b", input=[1, 2]))
    score = json_of(winner)

Every child is a runway of its own, checked against its grants and this
run's, and audited. A child that did not succeed is a value (its
`ChildResult`, in its `ChildState`), not an error; the helpers that need a
success (`first_success`, `chain`, `json_of`) raise `Err(Error_Invalid)`
naming the children and how they ended, in the Rust SDK's words. A host
call refused raises `Err(error)` as every host call does.
"""
import json

from componentize_py_types import Err
from wit_world.imports import orchestration as orch
from wit_world.imports.types import Error_Invalid, LockMode

# Most children an error about a join names one by one.
NAMED_CHILDREN = 8
# Most characters of a child's reason quoted in an error about it.
REASON_CHARS = 200
MODES = {"shared": LockMode.SHARED, "exclusive": LockMode.EXCLUSIVE}


def to(agent, action="run", input=None, locks=(), window_secs=None,
       attempts=None, backoff_ms=0, key=None) -> orch.Delegation:
    """A delegation to `agent`: `input` as JSON (bytes as they are; none:
    empty, read by the child as `{}`); `locks` as {dataset: "shared" |
    "exclusive"} or (dataset, mode) pairs — a dataset this run holds is
    handed down; `attempts` in all, the first included, waiting
    `backoff_ms` before the second; `key` the idempotency key."""
    retry = orch.RetryPolicy(attempts, backoff_ms) if attempts else None
    return orch.Delegation(agent, action, _bytes(input), _locks(locks), window_secs, retry, key)


def delegate(delegation: orch.Delegation) -> str:
    """Files one child; gives back its runway id."""
    return orch.delegate(delegation)


def join(children, mode=None, timeout_ms=None):
    """Waits for `children` (runway ids) as `mode` says (none: all); every
    child's `ChildResult`, in the order asked, on a timeout too."""
    return orch.join(list(children), mode or orch.JoinMode_All(), timeout_ms)


def cancel(children) -> None:
    """Cancels those of `children` that have not ended."""
    orch.cancel(list(children))


class Parallel:
    """Children delegated together, to join as one."""

    def __init__(self, children, timeout_ms=None):
        self.children = children
        self.timeout_ms = timeout_ms

    def join_all(self):
        return join(self.children, orch.JoinMode_All(), self.timeout_ms)

    def join_any(self):
        return join(self.children, orch.JoinMode_Any(), self.timeout_ms)

    def quorum(self, n: int):
        return join(self.children, orch.JoinMode_Quorum(n), self.timeout_ms)

    def first_success(self) -> orch.ChildResult:
        """The first child to succeed; the others are cancelled."""
        results = join(self.children, orch.JoinMode_FirstSuccess(), self.timeout_ms)
        for result in results:
            if result.state == orch.ChildState.SUCCEEDED:
                return result
        raise Err(Error_Invalid(_no_success(results)))

    def cancel(self) -> None:
        cancel(self.children)


def parallel(*delegations, timeout_ms=None) -> Parallel:
    """Delegates each, in order; a refusal raises its error, of its kind,
    saying which (`delegation 2 of 3 (agent scorer): ...`)."""
    n = len(delegations)
    children = [_delegate_as(f"delegation {i} of {n}", d) for i, d in enumerate(delegations, 1)]
    return Parallel(children, timeout_ms)


def first_success(*delegations) -> orch.ChildResult:
    """Races `delegations`: the first to succeed wins, the rest are cancelled."""
    return parallel(*delegations).first_success()


def chain(*delegations) -> orch.ChildResult:
    """Runs `delegations` one after the other, each step's input the
    previous step's output; the last step's result."""
    last, n = None, len(delegations)
    for i, step in enumerate(delegations, 1):
        if last is not None:
            step.input = last.output or b""
        what = f"chain step {i} of {n}"
        [last] = join([_delegate_as(what, step)])
        if last.state != orch.ChildState.SUCCEEDED:
            raise Err(Error_Invalid(f"{what}: {summary(last)}"))
    if last is None:
        raise Err(Error_Invalid("a chain of no steps"))
    return last


def handoff(agent, action="run", input=None, locks=(), window_secs=None,
            attempts=None, backoff_ms=0) -> None:
    """When `run` returns, `agent` takes over, its input `input` as JSON
    (none: this run's output). At most once per run."""
    retry = orch.RetryPolicy(attempts, backoff_ms) if attempts else None
    given = None if input is None else _bytes(input)
    orch.handoff(orch.HandoffRequest(agent, action, given, _locks(locks), window_secs, retry))


def progress(done: int, total: int, message: str) -> None:
    orch.progress(done, total, message)


def state_name(result: orch.ChildResult) -> str:
    """The WIT name of a child's state: `succeeded`, `timed-out`, ..."""
    return result.state.name.lower().replace("_", "-")


def json_of(result: orch.ChildResult):
    """A succeeded child's output decoded from JSON."""
    if result.output is None:
        raise Err(Error_Invalid(f"no output: {summary(result)}"))
    try:
        return json.loads(result.output)
    except ValueError as e:
        raise Err(Error_Invalid(f"output of child {result.runway} ({result.agent}): {e}"))


def describe(result: orch.ChildResult) -> dict:
    """A child as JSON: runway, agent, state, output (JSON when it is,
    else text), reason."""
    output = result.output
    if output is not None:
        try:
            output = json.loads(output)
        except ValueError:
            output = output.decode(errors="replace")
    return {"runway": result.runway, "agent": result.agent, "state": state_name(result),
            "output": output, "reason": result.reason}


def summary(result: orch.ChildResult) -> str:
    """`child ID (agent): state: reason`, the reason cut short."""
    line = f"child {result.runway} ({result.agent}): {state_name(result)}"
    if result.reason is not None:
        cut = result.reason[:REASON_CHARS]
        line += f": {cut}" + ("..." if len(result.reason) > REASON_CHARS else "")
    return line


def _no_success(results) -> str:
    if not results:
        return "no child succeeded: there were no children"
    message = "no child succeeded: " + "; ".join(summary(r) for r in results[:NAMED_CHILDREN])
    if len(results) > NAMED_CHILDREN:
        message += f"; and {len(results) - NAMED_CHILDREN} more"
    return message


def _delegate_as(what: str, delegation: orch.Delegation) -> str:
    try:
        return orch.delegate(delegation)
    except Err as e:
        error = e.value
        raise Err(type(error)(f"{what} (agent {delegation.agent}): {error.value}"))


def _bytes(value) -> bytes:
    if value is None:
        return b""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    return json.dumps(value, separators=(",", ":")).encode()


def _locks(locks):
    pairs = locks.items() if isinstance(locks, dict) else locks
    return [orch.LockRequest(d, MODES[m] if isinstance(m, str) else m) for d, m in pairs]
