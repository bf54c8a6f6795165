// {{name}}: a Runway agent in JavaScript. It counts its visits in the
// dataset it holds exclusively and greets the name its input gives.
//
// `runway build` makes it a component with componentize-js (the engine
// travels inside it); `runway run plan.toml --plugins plugins` runs it. To
// have other agents do part of the work
// (`runway:agent/orchestration@0.1.3`), see README.md.
import { info } from 'runway:agent/context@0.1.3';
import { read, write } from 'runway:agent/datasets@0.1.3';
import { log } from 'runway:agent/log@0.1.3';

// A host call returning result<T, error> returns T or throws an error whose
// .payload is the WIT error ({ tag: 'not-found', val: '...' }); throwing
// { tag, val } from run fails the run with that error.
export function run() {
  const me = info();
  const input = JSON.parse(new TextDecoder().decode(me.input) || '{}');
  const lock = me.locks.find((l) => l.mode === 'exclusive');
  if (!lock) throw { tag: 'denied', val: '{{name}} needs an exclusive lock' };
  let visits = { count: 0 };
  try {
    visits = JSON.parse(new TextDecoder().decode(read(lock.dataset, 'visits')));
  } catch (e) {
    if (e.payload?.tag !== 'not-found') throw e;
  }
  visits.count += 1;
  const out = new TextEncoder().encode(JSON.stringify(visits));
  write(lock.dataset, 'visits', out);
  log('info', `hello, ${input.name ?? 'world'} (visit ${visits.count})`);
  return out;
}
