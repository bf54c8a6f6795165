// fanout-js: a JavaScript agent that delegates to other agents through the
// host (WIT `runway:agent@0.1.2` `orchestration`, through the thin helpers
// of `orchestrate.js`), as the Rust SDK's `ctx.parallel` and
// `ctx.first_success` do. By the run's action:
//
// - `all` (or `run`): two `probe` children at once — `ok`, and `locks`
//   asking for the locks the input names (`{"locks": [["DATASET", "shared"
//   | "exclusive"], ...]}`, each taken at once if free) — joined all;
// - `first-success`: a `probe` that fails and one that succeeds, raced;
//   then joined again to see how each ended.
//
// Output: `{"winner": CHILD | null, "results": [CHILD, ...]}`, a CHILD
// being `{"runway", "agent", "state", "output", "reason"}` (`output` as
// JSON).
//
// Built by `runway build plugins/fanout-js` (componentize-js).
import { info } from 'runway:agent/context@0.1.2';
import { describe, parallel, progress, to } from './orchestrate.js';

export function run() {
  const me = info();
  let winner = null;
  let results;
  if (me.action === 'all' || me.action === 'run') {
    let input;
    try { input = JSON.parse(new TextDecoder().decode(me.input).trim() || '{}'); } catch (e) {
      throw { tag: 'invalid', val: `input: ${e.message}` };
    }
    const children = parallel(to('probe', 'ok'), to('probe', 'locks', { locks: input.locks ?? [] }));
    progress(1, 2, 'delegated');
    results = children.joinAll();
  } else if (me.action === 'first-success') {
    const race = parallel(to('probe', 'fail'), to('probe', 'ok'));
    progress(1, 2, 'racing');
    winner = describe(race.firstSuccess());
    results = race.joinAll();
  } else {
    throw { tag: 'invalid', val: `fanout-js: unknown action ${JSON.stringify(me.action)}` };
  }
  progress(2, 2, 'joined');
  return new TextEncoder().encode(JSON.stringify({ winner, results: results.map(describe) }));
}
