//! Compile-time checks of `#[factory]`: misuse fails on the offending token (committed
//! `.stderr` files), and correct uses compile in a crate outside the workspace.
//!
//! Refresh the expected output after an intended change with `TRYBUILD=overwrite cargo test -p setl-core --test ui`.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
