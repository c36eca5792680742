//! Compile errors of `#[factory(storage = ..)]`, each on the offending token.

#[test]
fn storage_mistakes_fail_to_compile() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/fail/unknown-storage-level.rs");
    cases.compile_fail("tests/ui/fail/storage-on-unstorable-output.rs");
}
