//! The HTML report is one self-contained file with every section (the rendering itself is
//! checked in headless Chromium by `scripts/check-html-report.sh`).

mod common;

use setl_report::RunReport;

fn sections(html: &str) {
    for id in ["id=\"gantt\"", "id=\"graph\"", "id=\"phases\"", "id=\"memory\"", "id=\"run-report\""] {
        assert!(html.contains(id), "no {id}");
    }
}

#[test]
fn the_report_is_self_contained_and_complete() {
    let report = common::small_report();
    let html = report.to_html();
    assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
    assert!(html.ends_with("</html>\n"));
    sections(&html);
    // Nothing is fetched: no external script, style, image or font.
    for needle in ["src=\"http", "href=\"http", "@import", "url(http"] {
        assert!(!html.contains(needle), "the report fetches something: {needle}");
    }
    // Type names are escaped, and every factory has a row with its critical-path mark.
    assert!(html.contains("Vec&lt;i64&gt;"));
    assert!(!html.contains("Vec<i64>"));
    assert_eq!(html.matches("<tr class=\"critical\">").count(), 3);
    // The embedded JSON reads back as the same report.
    let start = html.find("id=\"run-report\">").unwrap() + "id=\"run-report\">".len();
    let end = start + html[start..].find("</script>").unwrap();
    let embedded: RunReport = serde_json::from_str(&html[start..end]).unwrap();
    assert_eq!(embedded, report);
}

#[test]
fn a_failed_run_shows_its_error_escaped() {
    let mut report = common::failing_report();
    if let Some(error) = &mut report.error {
        error.message.push_str(" </script><b>");
    }
    let html = report.to_html();
    sections(&html);
    assert!(html.contains("<p class=\"error\">Error: Broken in process: "));
    assert!(html.contains("&lt;/script&gt;&lt;b&gt;"));
    // The JSON cannot close its script element early.
    assert_eq!(html.matches("</script>").count(), 2);
    assert!(html.contains("<td data-v=\"failed\">failed</td>"));
}

#[test]
fn the_timeline_has_a_lane_per_worker_and_a_bar_per_factory() {
    let report = common::diamond_report();
    let html = report.to_html();
    let gantt = &html[html.find("id=\"gantt\"").unwrap()..html.find("id=\"graph\"").unwrap()];
    let workers: std::collections::BTreeSet<_> = report.factories.iter().map(|factory| factory.thread).collect();
    assert_eq!(gantt.matches("class=\"lane\"").count(), workers.len());
    assert_eq!(gantt.matches("<g class=\"factory\"").count(), 4);
}

#[test]
fn cache_activity_gets_its_chart_and_trace_markers() {
    use setl_report::{CacheEvent, CacheEventKind};
    let mut report = common::small_report();
    assert!(!report.to_html().contains("id=\"cache-timeline\""));
    for (at_s, kind) in [(0.0001, CacheEventKind::Spilled), (0.0002, CacheEventKind::Reloaded)] {
        report.cache_events.push(CacheEvent {
            at_s,
            kind,
            factory: 0,
            consumer: Some(1),
            bytes: 2 << 20,
            thread: Some(0),
        });
    }
    let html = report.to_html();
    assert!(html.contains("id=\"cache-timeline\""));
    assert!(html.contains("bytes spilled (cumulative)") && html.contains("bytes reloaded (cumulative)"));
    assert!(!html.contains("bytes materialized (cumulative)"));
    let trace = report.to_chrome_trace();
    assert!(
        trace.contains("\"name\":\"spilled Numbers\"") && trace.contains("\"name\":\"reloaded Numbers\""),
        "{trace}"
    );
}

#[test]
fn a_hand_edited_report_with_bad_indices_renders_without_panicking() {
    let mut report = common::small_report();
    report.critical_path.factories.push(99);
    report.deliveries[0].consumer = 99;
    report.graph.factories[1].inputs[0].source = Some(setl_report::Source::Factory(42));
    report.elapsed_s = -1.0;
    assert!(report.to_html().contains("id=\"phases\""));
    assert!(report.to_chrome_trace().contains("traceEvents"));
    assert!(report.to_dot().starts_with("digraph"));
    let _ = setl_report::compare(&report, &report, setl_report::CompareOptions::default());
}
