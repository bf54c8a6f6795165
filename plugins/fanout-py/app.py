"""fanout-py: a Python agent that delegates to other agents through the
host (WIT `runway:agent@0.1.2` `orchestration`, through the thin helpers
of `orchestrate.py`), as the Rust SDK's `ctx.parallel` and
`ctx.first_success` do. By the run's action:

- `all` (or `run`): two `probe` children at once — `ok`, and `locks`
  asking for the locks the input names (`{"locks": [["DATASET", "shared"
  | "exclusive"], ...]}`, each taken at once if free) — joined all;
- `first-success`: a `probe` that fails and one that succeeds, raced; then
  joined again to see how each ended.

Output: `{"winner": CHILD | null, "results": [CHILD, ...]}`, a CHILD being
`{"runway", "agent", "state", "output", "reason"}` (`output` as JSON).

Built by `runway build plugins/fanout-py` (componentize-py).
"""
import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import context
from wit_world.imports.types import Error_Invalid

from orchestrate import describe, parallel, progress, to


class WitWorld(wit_world.WitWorld):
    def run(self) -> bytes:
        info = context.info()
        winner = None
        if info.action in ("all", "run"):
            try:
                locks = json.loads(info.input or b"{}").get("locks", [])
            except (ValueError, AttributeError) as e:
                raise Err(Error_Invalid(f"input: {e}"))
            children = parallel(to("probe", "ok"), to("probe", "locks", locks=locks))
            progress(1, 2, "delegated")
            results = children.join_all()
        elif info.action == "first-success":
            race = parallel(to("probe", "fail"), to("probe", "ok"))
            progress(1, 2, "racing")
            winner = describe(race.first_success())
            results = race.join_all()
        else:
            raise Err(Error_Invalid(f"fanout-py: unknown action {info.action!r}"))
        progress(2, 2, "joined")
        out = {"winner": winner, "results": [describe(r) for r in results]}
        return json.dumps(out, separators=(",", ":")).encode()
