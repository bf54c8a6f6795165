//! `forged-length`: the raw `datasets.write` import, called with pointer and
//! length pairs that lie about the guest's linear memory.
//!
//! The import is declared here by hand, exactly as `wit-bindgen` 0.61 lowers
//! `write: func(dataset: string, key: string, value: list<u8>) -> result<_, error>`
//! with the canonical ABI (seven flat `i32` parameters, no flat result):
//!
//! ```text
//! (import "runway:agent/datasets@0.1.0" "write"
//!   (func (param $ds_ptr i32) (param $ds_len i32)
//!         (param $key_ptr i32) (param $key_len i32)
//!         (param $val_ptr i32) (param $val_len i32)
//!         (param $ret_ptr i32)))
//! ```
//!
//! `ret_ptr` points at a 16-byte, 4-aligned return area the host fills:
//! byte 0 is the `result` tag (0 ok, 1 err); for an error, byte 4 is the
//! `error` case (0 denied, 1 lock-lost, 2 not-found, 3 invalid, 4 limit) and
//! bytes 8..16 the message's pointer and length (allocated in the guest
//! through `cabi_realloc`).
//!
//! wasmtime lifts every argument before calling the host function, so a
//! forged argument traps there ("... pointer/length out of bounds of
//! memory") and the host function never runs. The return pointer is checked
//! only after the host function returned (sync lowering), so with a forged
//! `ret_ptr` the write *is* performed (staged and audited) and then the call
//! traps: the host must drop that staged write with the failed run.

use serde::Deserialize;

/// Which argument to forge.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Forge {
    /// `value` has a real pointer but a length of 1 GiB, far past the end of
    /// linear memory (and past any hostcall-fuel budget).
    #[default]
    ValueLen,
    /// `value` starts 256 bytes below 4 GiB and is 4 KiB long, so the end
    /// wraps around in 32-bit arithmetic (to 0xF00).
    ValuePtr,
    /// The dataset name has a real pointer but a length of 1 GiB.
    DatasetLen,
    /// Valid arguments, but the return area is 16 bytes below 4 GiB.
    RetPtr,
    /// Valid arguments, but the return area is misaligned by one byte.
    RetMisaligned,
}

/// A length no 64 MiB linear memory can hold.
const HUGE_LEN: usize = 1 << 30;
/// An address 256 bytes below 4 GiB.
const NEAR_4_GIB: usize = 0xFFFF_FF00;
/// An address 16 bytes below 4 GiB: room for the return area, in theory.
const RET_NEAR_4_GIB: usize = 0xFFFF_FFF0;

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "runway:agent/datasets@0.1.0")]
unsafe extern "C" {
    /// The canonical-ABI lowering of `datasets.write`; see the module docs.
    #[link_name = "write"]
    fn raw_write(
        ds_ptr: *mut u8,
        ds_len: usize,
        key_ptr: *mut u8,
        key_len: usize,
        val_ptr: *mut u8,
        val_len: usize,
        ret_ptr: *mut u8,
    );
}

/// Stand-in off wasm32 (e.g. `cargo check` for the host): there is no
/// component host to call.
#[cfg(not(target_arch = "wasm32"))]
unsafe fn raw_write(
    _ds_ptr: *mut u8,
    _ds_len: usize,
    _key_ptr: *mut u8,
    _key_len: usize,
    _val_ptr: *mut u8,
    _val_len: usize,
    _ret_ptr: *mut u8,
) {
    unreachable!("the raw runway:agent/datasets import exists only on wasm32")
}

/// The return area, laid out as wit-bindgen lays it out (4 pointer-sized
/// words).
#[repr(C, align(8))]
struct RetArea([u8; 4 * size_of::<usize>()]);

/// Calls the raw `write` of key `hostile/forged` in `dataset` with one
/// argument forged as `how` says. Returns only if the host did not trap,
/// with a description of what came back.
pub fn call(dataset: &str, how: Forge) -> String {
    let key = "hostile/forged";
    let value = b"forged";
    // 0xFF is no valid result tag, so an untouched area is recognisable.
    let mut ret = RetArea([0xFF; 4 * size_of::<usize>()]);
    let ret_base = ret.0.as_mut_ptr();

    let mut ds = (dataset.as_ptr().cast_mut(), dataset.len());
    let key = (key.as_ptr().cast_mut(), key.len());
    let mut val = (value.as_ptr().cast_mut(), value.len());
    let mut ret_ptr = ret_base;
    match how {
        Forge::ValueLen => val.1 = HUGE_LEN,
        Forge::ValuePtr => val = (std::ptr::without_provenance_mut(NEAR_4_GIB), 0x1000),
        Forge::DatasetLen => ds.1 = HUGE_LEN,
        Forge::RetPtr => ret_ptr = std::ptr::without_provenance_mut(RET_NEAR_4_GIB),
        Forge::RetMisaligned => ret_ptr = ret_base.wrapping_add(1),
    }

    // SAFETY: deliberately not sound as a contract: the pointers are lies
    // told to the host, which must check them against linear memory and
    // trap. Nothing on this side dereferences a forged pointer: the host
    // writes only into `ret` (valid, 16 bytes, aligned) or, with a forged
    // `ret_ptr`, is expected to refuse. If the host wrongly answers an
    // error, its message buffer is leaked, never read.
    unsafe { raw_write(ds.0, ds.1, key.0, key.1, val.0, val.1, ret_ptr) };

    format!(
        "the host returned from a forged {how:?} write instead of trapping; return area: {:02x?}",
        ret.0
    )
}
