// fanout-js: a JavaScript agent that delegates to other agents through the
// host (WIT `runway:agent` `orchestration` (since 0.1.2), through the thin helpers
// of `orchestrate.js`), as the Rust SDK's `ctx.parallel`,
// `ctx.first_success` and `ctx.cancel` do. By the run's action:
//
// - `all` (or `run`): two `probe` children at once — `ok`, and `locks`
//   asking for the locks the input names (`{"locks": [["DATASET", "shared"
//   | "exclusive"], ...]}`, each taken at once if free) — joined all;
// - `first-success`: a `probe` that fails and one that succeeds, raced;
//   then joined again to see how each ended;
// - `cancel`: a `probe` that would sleep ten minutes, cancelled and joined
//   (at most a minute); then what the host refuses: a delegation to an
//   agent the grants do not name, and a cancel of a runway not this run's
//   child;
// - `quorum`: three `probe`s (`ok`, `fail`, `ok`) until two succeeded;
// - `chain`: `probe` `locks` (the input's locks), then `probe` `ok` given
//   its output as input; the last step is the winner.
//
// Output: `{"winner": CHILD | null, "results": [CHILD, ...], "refused":
// ["KIND: MESSAGE", ...]}`, a CHILD being `{"runway", "agent", "state",
// "output", "reason"}` (`output` as JSON).
//
// Built by `runway build plugins/fanout-js` (componentize-js).
import { info } from 'runway:agent/context@0.1.3';
import { cancel, chain, delegate, describe, join, parallel, progress, to } from './orchestrate.js';

const invalid = (val) => ({ tag: 'invalid', val });

// The locks the input names, `[["DATASET", "MODE"], ...]`.
function inputLocks(me) {
  try {
    return JSON.parse(new TextDecoder().decode(me.input).trim() || '{}').locks ?? [];
  } catch (e) {
    throw invalid(`input: ${e.message}`);
  }
}

function fanOut(me) {
  const children = parallel(to('probe', 'ok'), to('probe', 'locks', { locks: inputLocks(me) }));
  progress(1, 2, 'delegated');
  return [null, children.joinAll(), []];
}

function race() {
  const children = parallel(to('probe', 'fail'), to('probe', 'ok'));
  progress(1, 2, 'racing');
  const winner = describe(children.firstSuccess());
  return [winner, children.joinAll(), []];
}

function cancelled(me) {
  const sleeper = delegate(to('probe', 'slow-first'));
  cancel([sleeper]);
  progress(1, 2, 'cancelled');
  const results = join([sleeper], { tag: 'all' }, 60_000);
  const refused = [];
  for (const attempt of [() => parallel(to('summary')), () => cancel([`${me.runway}.99`])]) {
    try {
      attempt();
    } catch (e) {
      const error = e.payload ?? e;
      refused.push(`${error.tag}: ${error.val}`);
    }
  }
  return [null, results, refused];
}

function quorum() {
  const children = parallel(to('probe', 'ok'), to('probe', 'fail'), to('probe', 'ok'));
  return [null, children.quorum(2), []];
}

function pipeline(me) {
  const last = chain(to('probe', 'locks', { locks: inputLocks(me) }), to('probe', 'ok'));
  return [describe(last), [], []];
}

const ACTIONS = { all: fanOut, run: fanOut, 'first-success': race, cancel: cancelled, quorum, chain: pipeline };

export function run() {
  const me = info();
  const action = Object.hasOwn(ACTIONS, me.action) ? ACTIONS[me.action] : undefined;
  if (!action) throw invalid(`fanout-js: unknown action ${JSON.stringify(me.action)}`);
  const [winner, results, refused] = action(me);
  progress(2, 2, 'joined');
  return new TextEncoder().encode(JSON.stringify({ winner, results: results.map(describe), refused }));
}
