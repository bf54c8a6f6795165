// Delegating from a JavaScript agent in a line or two, as the Rust SDK's
// `ctx.delegate`, `ctx.parallel(..).joinAll()`, `ctx.first_success`,
// `ctx.chain`, `ctx.cancel`, `ctx.handoff` and `ctx.progress` do: thin
// wrappers over the WIT `runway:agent/orchestration@0.1.3` imports, which
// an agent may also import directly.
//
//   import { to, parallel, firstSuccess, describe } from './orchestrate.js';
//   const results = parallel(to('probe', 'ok'), to('probe', 'locks', { locks: { apps: 'shared' } })).joinAll();
//   const winner = firstSuccess(to('scorer-a', { input: [1, 2] }), to('scorer-b', { input: [1, 2] }));
//   const score = jsonOf(winner);
//
// Every child is a runway of its own, checked against its grants and this
// run's, and audited. A child that did not succeed is a value (its child
// result, in its state), not an error; the helpers that need a success
// (firstSuccess, chain, jsonOf) throw an `invalid` error naming the
// children and how they ended, in the Rust SDK's words. A host call refused
// throws as every host call does (its .payload is the WIT error).
import * as orch from 'runway:agent/orchestration@0.1.3';

// Most children an error about a join names one by one.
const NAMED_CHILDREN = 8;
// Most characters of a child's reason quoted in an error about it.
const REASON_CHARS = 200;

const invalid = (val) => ({ tag: 'invalid', val });
const bytes = (value) =>
  value === undefined ? new Uint8Array() : value instanceof Uint8Array ? value : new TextEncoder().encode(JSON.stringify(value));
const lockList = (locks = []) =>
  (Array.isArray(locks) ? locks : Object.entries(locks)).map(([dataset, mode]) => ({ dataset, mode }));
const retry = ({ attempts, backoffMs = 0 }) =>
  attempts ? { attempts, backoffMs: BigInt(backoffMs) } : undefined;
const secs = (s) => (s === undefined ? undefined : BigInt(s));

/** A delegation to `agent`: `input` as JSON (a Uint8Array as it is; none:
 * empty, read by the child as `{}`); `locks` as { dataset: 'shared' |
 * 'exclusive' } or [dataset, mode] pairs — a dataset this run holds is
 * handed down; `attempts` in all, the first included, waiting `backoffMs`
 * before the second; `key` the idempotency key. */
export function to(agent, action = 'run', opts = {}) {
  const { input, locks, windowSecs, key } = opts;
  return { agent, action, input: bytes(input), locks: lockList(locks), windowSecs: secs(windowSecs), retry: retry(opts), key };
}

/** Files one child; gives back its runway id. */
export const delegate = (delegation) => orch.delegate(delegation);

/** Waits for `children` (runway ids) as `mode` says ({ tag: 'all' },
 * 'any', 'first-success', { tag: 'quorum', val: n }); every child's
 * result, in the order asked, on a timeout too. */
export const join = (children, mode = { tag: 'all' }, timeoutMs) =>
  orch.join(children, mode, timeoutMs === undefined ? undefined : BigInt(timeoutMs));

/** Cancels those of `children` that have not ended. */
export const cancel = (children) => orch.cancel(children);

/** Children delegated together, to join as one. */
export class Parallel {
  constructor(children, timeoutMs) {
    this.children = children;
    this.timeoutMs = timeoutMs;
  }
  joinAll() { return join(this.children, { tag: 'all' }, this.timeoutMs); }
  joinAny() { return join(this.children, { tag: 'any' }, this.timeoutMs); }
  quorum(n) { return join(this.children, { tag: 'quorum', val: n }, this.timeoutMs); }
  /** The first child to succeed; the others are cancelled. */
  firstSuccess() {
    const results = join(this.children, { tag: 'first-success' }, this.timeoutMs);
    const winner = results.find((r) => r.state === 'succeeded');
    if (!winner) throw invalid(noSuccess(results));
    return winner;
  }
  cancel() { cancel(this.children); }
}

/** Delegates each, in order; a refusal throws its error, of its kind,
 * saying which (`delegation 2 of 3 (agent scorer): ...`). */
export function parallel(...delegations) {
  const n = delegations.length;
  return new Parallel(delegations.map((d, i) => delegateAs(`delegation ${i + 1} of ${n}`, d)));
}

/** Races `delegations`: the first to succeed wins, the rest are cancelled. */
export const firstSuccess = (...delegations) => parallel(...delegations).firstSuccess();

/** Runs `delegations` one after the other, each step's input the previous
 * step's output; the last step's result. */
export function chain(...delegations) {
  let last;
  const n = delegations.length;
  delegations.forEach((step, i) => {
    if (last) step.input = last.output ?? new Uint8Array();
    const what = `chain step ${i + 1} of ${n}`;
    [last] = join([delegateAs(what, step)]);
    if (last.state !== 'succeeded') throw invalid(`${what}: ${summary(last)}`);
  });
  if (!last) throw invalid('a chain of no steps');
  return last;
}

/** When `run` returns, `agent` takes over, its input `opts.input` as JSON
 * (none: this run's output). At most once per run. */
export function handoff(agent, action = 'run', opts = {}) {
  const { input, locks, windowSecs } = opts;
  const given = input === undefined ? undefined : bytes(input);
  orch.handoff({ agent, action, input: given, locks: lockList(locks), windowSecs: secs(windowSecs), retry: retry(opts) });
}

export const progress = (done, total, message) => orch.progress(BigInt(done), BigInt(total), message);

/** A succeeded child's output decoded from JSON. */
export function jsonOf(result) {
  if (result.output === undefined) throw invalid(`no output: ${summary(result)}`);
  try {
    return JSON.parse(new TextDecoder().decode(result.output));
  } catch (e) {
    throw invalid(`output of child ${result.runway} (${result.agent}): ${e.message}`);
  }
}

/** A child as JSON: runway, agent, state, output (JSON when it is, else
 * text), reason. */
export function describe(result) {
  let output = null;
  if (result.output !== undefined) {
    const text = new TextDecoder().decode(result.output);
    try { output = JSON.parse(text); } catch { output = text; }
  }
  return { runway: result.runway, agent: result.agent, state: result.state, output, reason: result.reason ?? null };
}

/** `child ID (agent): state: reason`, the reason cut short. */
export function summary(result) {
  let line = `child ${result.runway} (${result.agent}): ${result.state}`;
  if (result.reason !== undefined) {
    const chars = [...result.reason];
    line += `: ${chars.slice(0, REASON_CHARS).join('')}${chars.length > REASON_CHARS ? '...' : ''}`;
  }
  return line;
}

function noSuccess(results) {
  if (results.length === 0) return 'no child succeeded: there were no children';
  let message = `no child succeeded: ${results.slice(0, NAMED_CHILDREN).map(summary).join('; ')}`;
  if (results.length > NAMED_CHILDREN) message += `; and ${results.length - NAMED_CHILDREN} more`;
  return message;
}

function delegateAs(what, delegation) {
  try {
    return orch.delegate(delegation);
  } catch (e) {
    const error = e.payload ?? e;
    throw { tag: error.tag, val: `${what} (agent ${delegation.agent}): ${error.val}` };
  }
}
