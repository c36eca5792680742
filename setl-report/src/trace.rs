//! Chrome trace / Perfetto export: open the file in ui.perfetto.dev or chrome://tracing.
//!
//! The [Trace Event Format]: one process, one track (`tid`) per thread: `tid` 0 is the thread
//! that called `run()` and holds a `pipeline` slice; worker `N` is `tid` N+1. Each factory is a
//! `B`/`E` slice on its worker, each phase a slice nested in it. Each delivery is a flow (`s` in
//! the producer's slice, `f` in the consumer's), and memory samples are counter (`C`) tracks.
//! Work of a factory's lazy plans, executed in another phase, is an async slice (`b`/`e`, category
//! `executed`) on the thread that waited for it, with its CPU time and rows.
//! Times are microseconds from the pipeline's start.
//!
//! [Trace Event Format]: https://docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU

use serde_json::{json, Value};

use crate::report::{RunReport, Status};

/// The process id used in the trace.
const PID: u64 = 1;

fn micros(seconds: f64) -> f64 {
    // Whole nanoseconds, so the text is short and stable.
    (seconds * 1e9).round() / 1e3
}

/// The track of a worker: 0 is the caller's thread, worker `N` is `N + 1`.
pub fn track_of(thread: Option<usize>) -> u64 {
    thread.map_or(0, |index| index as u64 + 1)
}

impl RunReport {
    /// The run as a Chrome trace (`{"traceEvents": [...]}`), as a JSON value.
    pub fn to_chrome_trace_value(&self) -> Value {
        let mut events = Vec::new();
        events
            .push(json!({"ph": "M", "pid": PID, "tid": 0, "name": "process_name", "args": {"name": "setl pipeline"}}));
        let mut tracks: Vec<(u64, String)> = vec![(0, "caller".to_owned())];
        for worker in &self.workers {
            let track = track_of(worker.index);
            match tracks.iter_mut().find(|(tid, _)| *tid == track) {
                Some(entry) => entry.1 = worker.name.clone(),
                None => tracks.push((track, worker.name.clone())),
            }
        }
        for factory in &self.factories {
            if factory.start_s.is_some() && !tracks.iter().any(|(tid, _)| *tid == track_of(factory.thread)) {
                tracks.push((track_of(factory.thread), format!("worker-{}", track_of(factory.thread) - 1)));
            }
        }
        tracks.sort();
        for (tid, name) in &tracks {
            events.push(json!({"ph": "M", "pid": PID, "tid": tid, "name": "thread_name", "args": {"name": name}}));
            events.push(
                json!({"ph": "M", "pid": PID, "tid": tid, "name": "thread_sort_index", "args": {"sort_index": tid}}),
            );
        }

        let outcome = if self.ok { "ok" } else { "failed" };
        events.push(json!({"ph": "B", "pid": PID, "tid": 0, "ts": 0.0, "name": "pipeline", "cat": "pipeline",
            "args": {"factories": self.factories.len(), "threads": self.threads, "outcome": outcome}}));

        // Per factory: where its slice ends, so flows can start inside it.
        let mut flow_start: Vec<Option<f64>> = vec![None; self.factories.len()];
        for factory in &self.factories {
            let Some(start) = factory.start_s else { continue };
            let tid = track_of(factory.thread);
            let last_phase_end =
                factory.phases.iter().map(|phase| phase.start_s + phase.elapsed_s).fold(start, f64::max);
            let end = factory.end_s.unwrap_or(last_phase_end).max(last_phase_end);
            let mut args = json!({"stage": factory.stage, "status": factory.status, "critical": factory.critical});
            if let Some(output) = factory.output {
                args["rows"] = json!(output.rows);
                args["bytes"] = json!(output.bytes);
            }
            events.push(json!({"ph": "B", "pid": PID, "tid": tid, "ts": micros(start), "name": factory.name,
                "cat": "factory", "args": args}));
            for phase in &factory.phases {
                let phase_start = phase.start_s.max(start);
                let phase_end = (phase.start_s + phase.elapsed_s).clamp(phase_start, end);
                events.push(json!({"ph": "B", "pid": PID, "tid": tid, "ts": micros(phase_start), "name": phase.phase,
                    "cat": "phase", "args": {"factory": factory.name, "ok": phase.ok}}));
                events.push(json!({"ph": "E", "pid": PID, "tid": tid, "ts": micros(phase_end), "name": phase.phase,
                    "cat": "phase"}));
            }
            events.push(json!({"ph": "E", "pid": PID, "tid": tid, "ts": micros(end), "name": factory.name,
                "cat": "factory"}));
            if factory.status == Status::Finished {
                // Just before the slice ends, so the flow binds to this factory's slice.
                flow_start[factory.index] = Some(last_phase_end.max(start).min(end));
            }
        }

        // Work of a factory's plans, executed later: async slices (they overlap, one per
        // factory part of each execution) on the thread that waited for the execution.
        let mut async_id = 0_u64;
        for factory in &self.factories {
            for work in &factory.executed {
                async_id += 1;
                let name = format!("{} ({})", factory.name, work.what);
                let tid = track_of(work.thread);
                let args = json!({"defined_in": work.defined_in, "executed_in": work.executed_in,
                    "shared": work.shared, "compute_s": work.compute_s, "rows": work.rows,
                    "spilled_bytes": work.spilled_bytes, "peak_memory_bytes": work.peak_memory_bytes});
                events.push(json!({"ph": "b", "pid": PID, "tid": tid, "ts": micros(work.start_s), "id": async_id,
                    "name": name, "cat": "executed", "args": args}));
                events.push(json!({"ph": "e", "pid": PID, "tid": tid, "ts": micros(work.start_s + work.elapsed_s),
                    "id": async_id, "name": name, "cat": "executed"}));
            }
        }

        for (id, delivery) in self.deliveries.iter().enumerate() {
            let Some(producer) = delivery.producer else { continue };
            let (Some(Some(at)), Some(from)) = (flow_start.get(producer), self.factories.get(producer)) else {
                continue;
            };
            let consumer = self.factories.get(delivery.consumer).map_or("?", |consumer| consumer.name.as_str());
            let name = format!("{} -> {consumer}.{}", from.name, delivery.field);
            events.push(json!({"ph": "s", "pid": PID, "tid": track_of(from.thread), "ts": micros(*at), "id": id,
                "name": name, "cat": "delivery"}));
            events.push(json!({"ph": "f", "bp": "e", "pid": PID, "tid": track_of(delivery.thread),
                "ts": micros(delivery.at_s), "id": id, "name": name, "cat": "delivery"}));
        }

        for event in &self.cache_events {
            let what = match event.kind {
                crate::report::CacheEventKind::Materialized => "materialized",
                crate::report::CacheEventKind::Spilled => "spilled",
                crate::report::CacheEventKind::Reloaded => "reloaded",
            };
            let producer = self.factories.get(event.factory).map_or("?", |factory| factory.name.as_str());
            events
                .push(json!({"ph": "i", "s": "t", "pid": PID, "tid": track_of(event.thread), "ts": micros(event.at_s),
                "name": format!("{what} {producer}"), "cat": "cache", "args": {"bytes": event.bytes}}));
        }
        for sample in &self.memory {
            let mut args = serde_json::Map::new();
            if let Some(rss) = sample.rss_bytes {
                args.insert("rss_mib".into(), json!(rss as f64 / 1048576.0));
            }
            if let Some(bytes) = sample.outputs_bytes {
                args.insert("outputs_mib".into(), json!(bytes as f64 / 1048576.0));
            }
            events.push(json!({"ph": "C", "pid": PID, "tid": 0, "ts": micros(sample.at_s), "name": "memory",
                "args": args}));
        }
        events.push(json!({"ph": "E", "pid": PID, "tid": 0, "ts": micros(self.elapsed_s), "name": "pipeline",
            "cat": "pipeline"}));

        json!({
            "traceEvents": events,
            "displayTimeUnit": "ms",
            "otherData": {"setl_version": self.setl_version, "ok": self.ok, "elapsed_s": self.elapsed_s},
        })
    }

    /// The run as Chrome trace JSON text.
    pub fn to_chrome_trace(&self) -> String {
        serde_json::to_string(&self.to_chrome_trace_value()).unwrap_or_default()
    }
}
