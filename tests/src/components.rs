//! Components the Rust guests in `plugins/` cannot be: several core instances
//! each with a memory of its own, a component holding its whole per-run share
//! of pool slots, and a compile bomb. Written as component-model text (the
//! `wat` crate) or, for the bomb, encoded by hand so it is large and quick to
//! make.
//!
//! Each agent-shaped component exports the `runway:agent` world's `run`
//! (importing only the `types` interface for its `error` variant), so the host
//! loads it like any agent.

/// An agent component: `extra` core modules and instances, then a main
/// module whose `run` body is `run_body` (it must leave an `i32` pointer to
/// the result; see [`OK`]).
fn agent(extra: &str, run_body: &str) -> Vec<u8> {
    let text = format!(
        r#"(component
  (import "runway:agent/types@0.1.0" (instance $types
    (type $e (variant
      (case "denied" string) (case "lock-lost" string) (case "not-found" string)
      (case "invalid" string) (case "limit" string)))
    (export "error" (type (eq $e)))))
  (alias export $types "error" (type $error))
  {extra}
  (core module $Main
    (memory (export "memory") 1)
    (func (export "run") (result i32) {run_body}))
  (core instance $main (instantiate $Main))
  (type $run (func (result (result (list u8) (error $error)))))
  (func $run (type $run) (canon lift (core func $main "run") (memory $main "memory")))
  (export "run" (func $run)))"#
    );
    wat::parse_str(&text).expect("component text is valid")
}

/// `run` body returning `ok` with an empty output: the result (tag 0, list
/// pointer 0, length 0) is written at address 16.
const OK: &str = "(i32.store8 (i32.const 16) (i32.const 0))
     (i32.store (i32.const 20) (i32.const 0))
     (i32.store (i32.const 24) (i32.const 0))
     (i32.const 16)";

/// `run` body that spins until the host stops it.
const SPIN: &str = "(loop $l (br $l)) (unreachable)";

/// `memories` core instances, each with a memory of its own that its start
/// function grows to `mib_each` MiB and touches page by page (trapping if a
/// growth is refused), beside the main module's memory; `run` returns ok.
pub fn multi_memory(memories: u32, mib_each: u32) -> Vec<u8> {
    let pages = mib_each * 16;
    let bytes = mib_each << 20;
    let mut extra = format!(
        r#"(core module $Grow
    (memory 1)
    (func $grow (local $p i32)
      (if (i32.eq (memory.grow (i32.const {})) (i32.const -1)) (then (unreachable)))
      (loop $touch
        (i32.store8 (local.get $p) (i32.const 1))
        (local.set $p (i32.add (local.get $p) (i32.const 4096)))
        (br_if $touch (i32.lt_u (local.get $p) (i32.const {bytes})))))
    (start $grow))"#,
        pages - 1
    );
    for _ in 0..memories {
        extra.push_str("\n  (core instance (instantiate $Grow))");
    }
    agent(&extra, OK)
}

/// A component holding as many pool slots as a run may: `memories` memories
/// in all (one is the main module's) and `instances` core instances in all,
/// whose `run` spins until fuel or the window stops it.
pub fn slot_hungry(memories: u32, instances: u32) -> Vec<u8> {
    let mut extra = String::from("(core module $Mem (memory 1))\n  (core module $Empty)");
    for _ in 1..memories {
        extra.push_str("\n  (core instance (instantiate $Mem))");
    }
    for _ in memories..instances {
        extra.push_str("\n  (core instance (instantiate $Empty))");
    }
    agent(&extra, SPIN)
}

/// A component that is valid but slow to compile: one core module with
/// `functions` functions of `adds` additions each (about 7 bytes per add).
pub fn compile_bomb(functions: u32, adds: u32) -> Vec<u8> {
    // local.get 0; i32.const 1; i32.add; local.set 0
    const ADD: [u8; 7] = [0x20, 0x00, 0x41, 0x01, 0x6a, 0x21, 0x00];
    let mut body = vec![0x01, 0x01, 0x7f]; // one group: one i32 local
    for _ in 0..adds {
        body.extend_from_slice(&ADD);
    }
    body.extend_from_slice(&[0x20, 0x00, 0x0b]); // local.get 0; end
    let mut code = leb(functions);
    for _ in 0..functions {
        code.extend(leb(body.len() as u32));
        code.extend_from_slice(&body);
    }
    let mut funcs = leb(functions);
    funcs.extend(std::iter::repeat_n(0u8, functions as usize));
    let mut module = b"\0asm\x01\0\0\0".to_vec();
    section(&mut module, 1, &[0x01, 0x60, 0x00, 0x01, 0x7f]); // type: () -> i32
    section(&mut module, 3, &funcs);
    section(&mut module, 10, &code);
    let mut component = b"\0asm\x0d\0\x01\0".to_vec();
    section(&mut component, 1, &module); // a core module section
    component
}

fn section(out: &mut Vec<u8>, id: u8, content: &[u8]) {
    out.push(id);
    out.extend(leb(content.len() as u32));
    out.extend_from_slice(content);
}

/// Unsigned LEB128.
fn leb(mut n: u32) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}
