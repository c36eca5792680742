//! For the Parquet and IPC targets: a panic raised inside a dependency (a source file under
//! Cargo's registry, such as arrow-ipc's `unimplemented!` on a NONE type) unwinds instead of
//! aborting at once, so that setl-arrow's guard turns it into the error a user gets. Any other
//! panic goes to libFuzzer's hook and aborts, and a dependency panic setl-arrow does not catch
//! still aborts: libfuzzer-sys's `catch_unwind` around the target aborts on it.

use std::sync::Once;

/// Installs the hook once, in front of libFuzzer's.
pub fn let_unwind() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_dependency = info.location().is_some_and(|l| l.file().contains("/.cargo/registry/"));
            if !in_dependency {
                fuzzer_hook(info);
            }
        }));
    });
}
