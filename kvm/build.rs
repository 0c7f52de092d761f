//! The C library's SONAME: `libkvm.so.0`, the version of its C ABI (the
//! kvm(3) interface of kvm.h), not of the crate. Programs linked with
//! `-lkvm` then need `libkvm.so.0`, as they would a system's libkvm.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_CAPI").is_some()
        && std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
    {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libkvm.so.0");
    }
}
