"""summary: count the records (and value bytes) of one dataset, write the
count to another. Input: {"source": "<dataset>", "target": "<dataset>"}.

Built by `runway build plugins/summary-py` (componentize-py; the interpreter
travels inside the component).
"""
import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import context, datasets, log
from wit_world.imports.types import Error_Invalid


def field(args, name: str) -> str:
    if not isinstance(args, dict) or name not in args:
        raise Err(Error_Invalid(f"input: missing field `{name}`"))
    if not isinstance(args[name], str):
        raise Err(Error_Invalid(f"input: field `{name}` must be a string"))
    return args[name]


class WitWorld(wit_world.WitWorld):
    def run(self) -> bytes:
        # A host call returning result<T, error> returns T or raises
        # Err(error); letting it escape makes it this run's err, unchanged.
        try:
            args = json.loads(context.info().input.strip() or b"{}")  # empty input = {}
        except ValueError as e:
            raise Err(Error_Invalid(f"input: {e}"))
        source, target = field(args, "source"), field(args, "target")
        # The records are counted by the host (one call); the bytes by
        # reading every record, a page of keys at a time.
        records = datasets.count(source, "")
        size = 0
        cursor = None
        while True:
            page = datasets.list(source, "", cursor, 500)
            size += sum(len(datasets.read(source, key)) for key in page.keys)
            cursor = page.next_cursor
            if cursor is None:
                break
        out = json.dumps({"records": records, "bytes": size}, separators=(",", ":")).encode()
        datasets.write(target, "summary", out)
        log.log(log.Level.INFO, f"summarised {records} records ({size} bytes) of {source} into {target}")
        return out
