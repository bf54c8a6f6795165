"""{{name}}: a Runway agent in Python. It counts its visits in the dataset
it holds exclusively and greets the name its input gives.

`runway build` makes it a component with componentize-py (the interpreter
travels inside it); `runway run plan.toml --plugins plugins` runs it. To
have other agents do part of the work (`wit_world.imports.orchestration`),
see README.md.
"""
import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import context, datasets, log
from wit_world.imports.types import Error_Denied, Error_NotFound, LockMode


class WitWorld(wit_world.WitWorld):
    def run(self) -> bytes:
        # A host call returning result<T, error> returns T or raises
        # Err(error); an Err escaping run() fails the run with that error.
        info = context.info()
        name = json.loads(info.input or b"{}").get("name", "world")
        lock = next((l for l in info.locks if l.mode == LockMode.EXCLUSIVE), None)
        if lock is None:
            raise Err(Error_Denied("{{name}} needs an exclusive lock"))
        try:
            visits = json.loads(datasets.read(lock.dataset, "visits"))
        except Err as e:
            if not isinstance(e.value, Error_NotFound):
                raise
            visits = {"count": 0}
        visits["count"] += 1
        out = json.dumps(visits, separators=(",", ":")).encode()
        datasets.write(lock.dataset, "visits", out)
        log.log(log.Level.INFO, f"hello, {name} (visit {visits['count']})")
        return out
