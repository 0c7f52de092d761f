//! Symbols: `kvm_nlist` and FreeBSD's `kvm_nlist2`.

use super::layout::{N_ABS, N_BSS, N_DATA, N_EXT, N_TEXT};
use super::{guard, handle, Handle, KvmNlist, Nlist, Resolver};
use crate::KernelSymbol;
use crate::Kvm;
use std::ffi::{c_char, c_int, CStr, CString};

/// `n_type` of a symbol of type letter `kind`: its section, and N_EXT for
/// a global one. A symbol whose table gives no type (`?`) counts as
/// global data.
fn n_type(kind: u8) -> u8 {
    let section = match kind.to_ascii_lowercase() {
        b't' | b'w' => N_TEXT,
        b'b' => N_BSS,
        b'a' => N_ABS,
        _ => N_DATA,
    };
    let global = kind.is_ascii_uppercase() || kind == b'?';
    section | if global { N_EXT } else { 0 }
}

/// The names of a list that ends at a NULL or empty name.
///
/// # Safety
/// `name(i)` is NULL or a NUL-terminated string for each `i` up to the end.
unsafe fn names(name: impl Fn(usize) -> *const c_char) -> Vec<CString> {
    let mut out = Vec::new();
    loop {
        let p = name(out.len());
        if p.is_null() {
            return out;
        }
        // SAFETY: the caller's contract.
        let s = unsafe { CStr::from_ptr(p) };
        if s.is_empty() {
            return out;
        }
        out.push(s.to_owned());
    }
}

/// Looks `names` up as `kvm_nlist` does: as given, then without one
/// leading `_`, then by the resolver.
fn lookup(
    kd: &Kvm,
    resolver: Option<Resolver>,
    names: &[CString],
) -> Result<Vec<Option<KernelSymbol>>, crate::Error> {
    let text: Vec<&str> = names.iter().map(|n| n.to_str().unwrap_or("")).collect();
    let mut found = kd.nlist_symbols(&text)?;
    let retry: Vec<usize> = (0..names.len())
        .filter(|&i| found[i].is_none() && text[i].len() > 1 && text[i].starts_with('_'))
        .collect();
    if !retry.is_empty() {
        let stripped: Vec<&str> = retry.iter().map(|&i| &text[i][1..]).collect();
        for (&i, s) in retry.iter().zip(kd.nlist_symbols(&stripped)?) {
            found[i] = s;
        }
    }
    if let Some(resolve) = resolver {
        for (i, slot) in found.iter_mut().enumerate() {
            if slot.is_none() {
                let mut addr = 0u64;
                // SAFETY: the caller's resolver, with a NUL-terminated
                // name and a valid out pointer.
                if unsafe { resolve(names[i].as_ptr(), &mut addr) } == 0 {
                    *slot = Some(KernelSymbol { addr, kind: b'?' });
                }
            }
        }
    }
    Ok(found)
}

/// An entry of either list.
trait Entry {
    fn name(&self) -> *const c_char;
    fn set(&mut self, n_type: u8, n_value: u64);
}

impl Entry for Nlist {
    fn name(&self) -> *const c_char {
        self.n_name
    }
    fn set(&mut self, n_type: u8, n_value: u64) {
        self.n_type = n_type;
        self.n_value = n_value as std::ffi::c_ulong;
    }
}

impl Entry for KvmNlist {
    fn name(&self) -> *const c_char {
        self.n_name
    }
    fn set(&mut self, n_type: u8, n_value: u64) {
        self.n_type = n_type;
        self.n_value = n_value;
    }
}

/// Fills the list at `nl` for the handle `kd`: the number of names not
/// found, -1 on error. The handle is let go while the resolver (the
/// caller's code) runs.
///
/// # Safety
/// `kd` is NULL or an open handle; `nl` is an array ending at an entry
/// whose name is NULL or empty.
unsafe fn fill<E: Entry>(kd: *mut Handle, call: &str, nl: *mut E) -> c_int {
    let (kvm, resolver) = {
        // SAFETY: the caller's contract; no other reference is live.
        let Some(h) = (unsafe { handle(kd) }) else {
            return -1;
        };
        if nl.is_null() {
            h.fail(format_args!("{call}: NULL list"));
            return -1;
        }
        match h.kvm() {
            Some(k) => (k, h.resolver),
            None => return -1,
        }
    };
    // SAFETY: the caller's list, read up to its end.
    let names = unsafe { names(|i| (*nl.add(i)).name()) };
    let found = match lookup(&kvm, resolver, &names) {
        Ok(f) => f,
        Err(e) => {
            // SAFETY: as above; the resolver has returned.
            if let Some(h) = unsafe { handle(kd) } {
                h.fail(e);
            }
            return -1;
        }
    };
    let mut missing = 0;
    for (i, s) in found.iter().enumerate() {
        // SAFETY: entry i is before the list's end.
        let e = unsafe { &mut *nl.add(i) };
        match s {
            Some(s) => e.set(n_type(s.kind), s.addr),
            None => {
                e.set(0, 0);
                missing += 1;
            }
        }
    }
    missing
}

/// `kvm_nlist(3)`: the number of names not found, -1 on error.
///
/// # Safety
/// `kd` is an open handle or NULL; `nl` is an array ending at an entry
/// whose `n_name` is NULL or empty.
#[no_mangle]
pub unsafe extern "C" fn kvm_nlist(kd: *mut Handle, nl: *mut Nlist) -> c_int {
    // SAFETY: the caller's contract.
    guard(kd, "kvm_nlist", -1, || unsafe { fill(kd, "kvm_nlist", nl) })
}

/// FreeBSD's `kvm_nlist2(3)`: as [`kvm_nlist`], 64-bit values.
///
/// # Safety
/// As [`kvm_nlist`].
#[no_mangle]
pub unsafe extern "C" fn kvm_nlist2(kd: *mut Handle, nl: *mut KvmNlist) -> c_int {
    // SAFETY: the caller's contract.
    guard(kd, "kvm_nlist2", -1, || unsafe {
        fill(kd, "kvm_nlist2", nl)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_of_kallsyms_letters() {
        assert_eq!(n_type(b'T'), N_TEXT | N_EXT);
        assert_eq!(n_type(b't'), N_TEXT);
        assert_eq!(n_type(b'D'), N_DATA | N_EXT);
        assert_eq!(n_type(b'r'), N_DATA);
        assert_eq!(n_type(b'B'), N_BSS | N_EXT);
        assert_eq!(n_type(b'A'), N_ABS | N_EXT);
        assert_eq!(n_type(b'?'), N_DATA | N_EXT);
    }
}
