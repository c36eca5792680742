//! Compile-time diagnostics of `#[derive(Schema)]`: each mistake is one error on the right token.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
