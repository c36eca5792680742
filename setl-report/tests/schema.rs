//! The committed JSON Schema describes exactly what `RunReport::to_json` writes.
//!
//! The validator below implements the JSON Schema keywords the schema file uses (and refuses
//! any other keyword, so nothing in the schema goes unchecked).

mod common;

use serde_json::{json, Value};
use setl_report::{CacheEvent, CacheEventKind, CacheStats, RunReport, JSON_SCHEMA, SCHEMA_VERSION};

const KNOWN: &[&str] = &[
    "$schema",
    "$id",
    "$defs",
    "$ref",
    "title",
    "description",
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "const",
    "minimum",
    "oneOf",
];

fn type_matches(value: &Value, name: &str) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        "integer" => value.is_u64() || value.is_i64(),
        other => panic!("unknown type {other} in the schema"),
    }
}

/// Appends to `errors` every violation of `schema` by `value`, at `path`.
fn validate(root: &Value, schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let schema = schema.as_object().expect("a schema is an object");
    for key in schema.keys() {
        assert!(KNOWN.contains(&key.as_str()), "the schema uses keyword {key}, which this test does not check");
    }
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.strip_prefix("#/$defs/").expect("local $defs references only");
        let target = &root["$defs"][name];
        assert!(target.is_object(), "dangling $ref {reference}");
        validate(root, target, value, path, errors);
    }
    if let Some(types) = schema.get("type") {
        let ok = match types {
            Value::String(name) => type_matches(value, name),
            Value::Array(names) => names.iter().any(|name| type_matches(value, name.as_str().unwrap())),
            _ => panic!("bad type keyword"),
        };
        if !ok {
            errors.push(format!("{path}: {value} is not of type {types}"));
            return;
        }
    }
    if let Some(expected) = schema.get("const") {
        if value != expected {
            errors.push(format!("{path}: {value} is not {expected}"));
        }
    }
    if let Some(Value::Array(allowed)) = schema.get("enum") {
        if !allowed.contains(value) {
            errors.push(format!("{path}: {value} is not one of {allowed:?}"));
        }
    }
    if let (Some(minimum), Some(number)) = (schema.get("minimum").and_then(Value::as_f64), value.as_f64()) {
        if number < minimum {
            errors.push(format!("{path}: {number} < {minimum}"));
        }
    }
    if let Some(Value::Array(options)) = schema.get("oneOf") {
        let matching = options
            .iter()
            .filter(|option| {
                let mut inner = Vec::new();
                validate(root, option, value, path, &mut inner);
                inner.is_empty()
            })
            .count();
        if matching != 1 {
            errors.push(format!("{path}: {value} matches {matching} of the oneOf schemas, not exactly one"));
        }
    }
    if let Value::Object(object) = value {
        let properties = schema.get("properties").and_then(Value::as_object);
        if let Some(Value::Array(required)) = schema.get("required") {
            for name in required {
                let name = name.as_str().unwrap();
                if !object.contains_key(name) {
                    errors.push(format!("{path}: missing required {name}"));
                }
            }
        }
        for (key, item) in object {
            match properties.and_then(|properties| properties.get(key)) {
                Some(property) => validate(root, property, item, &format!("{path}.{key}"), errors),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    errors.push(format!("{path}: unexpected property {key}"))
                }
                None => {}
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (value, schema.get("items")) {
        for (index, item) in items.iter().enumerate() {
            validate(root, item_schema, item, &format!("{path}[{index}]"), errors);
        }
    }
}

fn schema() -> Value {
    serde_json::from_str(JSON_SCHEMA).expect("the committed schema is JSON")
}

fn violations(report: &Value) -> Vec<String> {
    let schema = schema();
    let mut errors = Vec::new();
    validate(&schema, &schema, report, "$", &mut errors);
    errors
}

#[test]
fn the_schema_file_is_the_one_compiled_in_and_names_this_version() {
    let on_disk =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema/run-report.v2.schema.json")).unwrap();
    assert_eq!(on_disk, JSON_SCHEMA);
    let schema = schema();
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert_eq!(schema["properties"]["schema_version"]["const"], json!(SCHEMA_VERSION));
}

#[test]
fn a_successful_run_matches_the_schema() {
    let report = common::small_report();
    let value = serde_json::to_value(&report).unwrap();
    assert_eq!(violations(&value), Vec::<String>::new());
    // The store reports its statistics; nothing was spilled, so there are no cache events.
    assert_eq!(value["cache"]["releases"], 2);
    assert_eq!(value["cache"]["spilled_bytes"], 0);
    assert!(value.get("cache_events").is_none());
    // The run exercised the optional parts: measured outputs, an external input, a skipped write.
    let total = report.factory("Total").unwrap();
    assert_eq!(total.skipped, ["write"]);
    assert_eq!(report.factory("Numbers").unwrap().output.unwrap().rows, Some(10));
    assert!(report.deliveries.iter().any(|delivery| delivery.producer.is_none() && delivery.field == "offset"));
}

#[test]
fn a_failed_run_with_cache_statistics_matches_the_schema() {
    let mut report = common::failing_report();
    report.cache = Some(CacheStats {
        budget: Some(1 << 20),
        bytes_held: 1,
        peak_bytes: 2,
        spilled_bytes: 3,
        spill_files: 1,
        spill_files_deleted: 1,
        reloads: 1,
        reloaded_bytes: 3,
        releases: 4,
        materializations: 1,
        lazy_runs: 1,
        lazy_recomputations: 0,
    });
    report.cache_events.push(CacheEvent {
        at_s: 0.001,
        kind: CacheEventKind::Spilled,
        factory: 0,
        consumer: None,
        bytes: 3,
        thread: Some(0),
    });
    let value = serde_json::to_value(&report).unwrap();
    assert_eq!(violations(&value), Vec::<String>::new());
    assert_eq!(value["cache_events"][0]["kind"], "spilled");
    assert_eq!(value["error"]["phase"], "process");
    assert_eq!(value["cache"]["spilled_bytes"], 3);
}

#[test]
fn the_schema_rejects_what_the_report_never_writes() {
    let report = serde_json::to_value(common::small_report()).unwrap();
    let mut extra = report.clone();
    extra["factories"][0]["colour"] = json!("red");
    assert!(
        violations(&extra).iter().any(|error| error.contains("unexpected property colour")),
        "{:?}",
        violations(&extra)
    );
    let mut missing = report.clone();
    missing.as_object_mut().unwrap().remove("elapsed_s");
    assert_eq!(violations(&missing), ["$: missing required elapsed_s"]);
    let mut wrong = report.clone();
    wrong["factories"][1]["phases"][0]["phase"] = json!("compute");
    assert_eq!(violations(&wrong).len(), 1, "{:?}", violations(&wrong));
    let mut newer = report;
    newer["schema_version"] = json!(SCHEMA_VERSION + 1);
    assert!(!violations(&newer).is_empty());
}

#[test]
fn reports_round_trip_and_refuse_newer_versions() {
    let report = common::small_report();
    let text = report.to_json();
    assert_eq!(RunReport::from_json(&text).unwrap(), report);
    let current = format!("\"schema_version\": {SCHEMA_VERSION}");
    let newer = text.replacen(&current, &format!("\"schema_version\": {}", SCHEMA_VERSION + 1), 1);
    assert_eq!(
        RunReport::from_json(&newer).unwrap_err().to_string(),
        format!(
            "run report schema_version {} is newer than this setl-report reads ({SCHEMA_VERSION}); upgrade setl-report",
            SCHEMA_VERSION + 1
        )
    );
    // A version 1 report (before executed work was recorded) still loads, with none.
    let older = text.replacen(&current, "\"schema_version\": 1", 1);
    let loaded = RunReport::from_json(&older).unwrap();
    assert_eq!(loaded.schema_version, 1);
    assert!(loaded.factories.iter().all(|factory| factory.executed.is_empty()));
    let error = RunReport::from_json("{\"schema_version\": 1, \"ok\": true}").unwrap_err().to_string();
    assert!(error.starts_with("not a setl run report: missing field"), "{error}");
}

/// A value the store can spill: bytes written to a file as they are.
#[derive(Clone)]
struct Blob(Vec<u8>);

impl setl_core::Storable for Blob {
    fn byte_size(&self) -> usize {
        self.0.len()
    }
    fn spill(&self, path: &std::path::Path) -> Result<(), setl_core::BoxError> {
        Ok(std::fs::write(path, &self.0)?)
    }
    fn reload(path: &std::path::Path) -> Result<Self, setl_core::BoxError> {
        Ok(Blob(std::fs::read(path)?))
    }
}

mod spilling {
    use setl_core::prelude::*;

    use super::Blob;

    #[factory]
    #[derive(Default)]
    pub(super) struct Make;

    impl Factory for Make {
        type Output = Blob;
        fn get(&self) -> Blob {
            Blob(vec![7; 1000])
        }
    }

    #[factory]
    #[derive(Default)]
    pub(super) struct Count {
        #[delivery(producer = Make)]
        blob: Delivery<Blob>,
    }

    impl Factory for Count {
        type Output = usize;
        fn get(&self) -> usize {
            self.blob.get().0.len()
        }
    }

    #[factory]
    #[derive(Default)]
    pub(super) struct Sum {
        #[delivery(producer = Make)]
        blob: Delivery<Blob>,
    }

    impl Factory for Sum {
        type Output = u64;
        fn get(&self) -> u64 {
            self.blob.get().0.iter().map(|&byte| u64::from(byte)).sum()
        }
    }
}

#[test]
fn a_run_that_spills_reports_its_cache_and_matches_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let setl = setl_core::Setl::builder().threads(1).memory_budget(0).spill_dir(dir.path()).build().unwrap();
    let mut pipeline = setl.new_pipeline();
    pipeline.add_stage_from_type::<spilling::Make>();
    pipeline.add_stage(
        setl_core::Stage::new().add_factory_from_type::<spilling::Count>().add_factory_from_type::<spilling::Sum>(),
    );
    let (result, report) = setl_report::run_with_report(&mut pipeline, setl_report::RunRecorder::new());
    result.unwrap();
    let cache = report.cache.as_ref().unwrap();
    assert_eq!((cache.budget, cache.spilled_bytes, cache.spill_files), (Some(0), 1000, 1));
    let events: Vec<(CacheEventKind, usize, Option<usize>, u64)> =
        report.cache_events.iter().map(|event| (event.kind, event.factory, event.consumer, event.bytes)).collect();
    assert_eq!(events[0], (CacheEventKind::Spilled, 0, None, 1000));
    assert!(events[1..].iter().all(|event| event.0 == CacheEventKind::Reloaded && event.3 == 1000), "{events:?}");
    assert_eq!(events.len() as u64, 1 + cache.reloads);
    let value = serde_json::to_value(&report).unwrap();
    assert_eq!(violations(&value), Vec::<String>::new());
    assert!(report.to_html().contains("id=\"cache-timeline\""));
    // The store's own size of the Storable output fills the report's output size.
    assert_eq!(report.factory("Make").unwrap().output, Some(setl_report::OutputSize { rows: None, bytes: Some(1000) }));
    assert_eq!(report.factory("Count").unwrap().output, None);
}
