// summary: count the records (and value bytes) of one dataset, write the
// count to another. Input: {"source": "<dataset>", "target": "<dataset>"}.
//
// Built by `runway build plugins/summary-js` (componentize-js; the engine
// travels inside the component).
import { info } from 'runway:agent/context@0.1.3';
import { count, list, read, write } from 'runway:agent/datasets@0.1.3';
import { log } from 'runway:agent/log@0.1.3';

const invalid = (val) => ({ tag: 'invalid', val });

function field(args, name) {
  if (args === null || typeof args !== 'object' || !(name in args)) throw invalid(`input: missing field \`${name}\``);
  if (typeof args[name] !== 'string') throw invalid(`input: field \`${name}\` must be a string`);
  return args[name];
}

// A host call returning result<T, error> returns T or throws a ComponentError
// whose .payload is the error ({tag: 'denied', val: '...'}); an exception
// escaping run becomes run's err (its .payload if it has one), unchanged.
export function run() {
  const text = new TextDecoder().decode(info().input).trim() || '{}'; // empty input = {}
  let args;
  try { args = JSON.parse(text); } catch (e) { throw invalid(`input: ${e.message}`); }
  const source = field(args, 'source'), target = field(args, 'target');
  // The records are counted by the host (one call; a u64 is a BigInt);
  // the bytes by reading every record, a page of keys at a time.
  const records = Number(count(source, ''));
  let bytes = 0, cursor;
  do {
    const page = list(source, '', cursor, 500);
    for (const key of page.keys) bytes += read(source, key).length;
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  const out = new TextEncoder().encode(JSON.stringify({ records, bytes }));
  write(target, 'summary', out);
  log('info', `summarised ${records} records (${bytes} bytes) of ${source} into ${target}`);
  return out;
}
