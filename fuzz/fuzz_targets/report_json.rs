//! Any text given to the run report loader gives a report or an error, never a panic; a report
//! it accepts renders (HTML, Chrome trace, Mermaid, DOT) without panicking and in time bounded by
//! its size, and loads back from its own JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use setl_report::RunReport;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(report) = RunReport::from_json(text) else { return };
    let _ = report.to_html();
    let _ = report.to_chrome_trace();
    let _ = report.to_mermaid_flowchart();
    let _ = report.to_dot();
    let again = RunReport::from_json(&report.to_json()).expect("a loaded report loads back from its JSON");
    assert_eq!(again, report);
});
