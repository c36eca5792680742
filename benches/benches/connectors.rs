//! Read and write throughput of the CSV and Parquet connectors against the raw arrow-csv and
//! parquet crates on the same file and data.
//!
//! Groups: `csv_read`, `csv_write`, `parquet_read`, `parquet_write`, each with `raw` and
//! `setl` (throughput in bytes of the file); the write groups add `setl_fsync`, setl-arrow's
//! default, which flushes the file to disk before renaming it into place (the raw crates do
//! not sync, so the 5% target is for `setl` without fsync).
//!
//! `cargo bench -p setl-benches --bench connectors` (add `-- --quick` for a short run).
//!
//! Target (issue 3): setl-arrow's overhead over the raw crates at most 5%. Before the criterion
//! groups, each pair is timed alternately (median of 9 runs) and the measured overhead is
//! printed beside the target.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use setl_arrow::io::{CsvReader, CsvWriter, ParquetReader, ParquetWriter, SaveMode};
use setl_arrow::Dataset;

const ROWS: usize = 200_000;
const BATCH: usize = 8192;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("price", DataType::Float64, true),
        Field::new("qty", DataType::Int32, false),
        Field::new("paid", DataType::Boolean, false),
        Field::new("day", DataType::Date32, false),
    ]))
}

/// Deterministic data (a linear congruential generator with a fixed seed).
fn dataset() -> Dataset {
    let mut state: u64 = 0x5eed;
    let mut next = move || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    };
    let mut batches = Vec::new();
    let mut start = 0;
    while start < ROWS {
        let n = BATCH.min(ROWS - start);
        let draws: Vec<u64> = (0..n).map(|_| next()).collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values((start..start + n).map(|i| i as i64))),
            Arc::new(StringArray::from_iter(
                draws.iter().map(|d| (d % 10 != 0).then(|| format!("customer-{}", d % 5000))),
            )),
            Arc::new(Float64Array::from_iter(draws.iter().map(|d| (d % 7 != 0).then(|| (d % 100_000) as f64 / 100.0)))),
            Arc::new(Int32Array::from_iter_values(draws.iter().map(|d| (d % 50) as i32))),
            Arc::new(BooleanArray::from_iter(draws.iter().map(|d| Some(d % 2 == 0)))),
            Arc::new(Date32Array::from_iter_values(draws.iter().map(|d| 19_000 + (d % 1000) as i32))),
        ];
        batches.push(RecordBatch::try_new(schema(), columns).expect("valid batch"));
        start += n;
    }
    Dataset::try_new(schema(), batches).expect("one schema")
}

fn raw_csv_read(path: &Path) -> usize {
    let file = BufReader::new(File::open(path).expect("file"));
    let reader =
        arrow::csv::ReaderBuilder::new(schema()).with_header(true).with_batch_size(BATCH).build(file).expect("reader");
    reader.map(|b| b.expect("batch").num_rows()).sum()
}

fn setl_csv_read(path: &Path) -> usize {
    CsvReader::new().with_schema(schema()).with_batch_size(BATCH).read(path).expect("read").num_rows()
}

fn raw_csv_write(data: &Dataset, path: &Path) {
    let mut writer = arrow::csv::WriterBuilder::new().with_header(true).build(File::create(path).expect("file"));
    for batch in data.batches() {
        writer.write(batch).expect("write");
    }
}

fn setl_csv_write(data: &Dataset, path: &Path, sync: bool) {
    CsvWriter::new().with_mode(SaveMode::ErrorIfExists).with_sync(sync).write(data, path).expect("write");
}

fn raw_parquet_read(path: &Path) -> usize {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).expect("file"))
        .expect("parquet")
        .with_batch_size(BATCH)
        .build()
        .expect("reader");
    let batches: Vec<RecordBatch> = reader.map(|b| b.expect("batch")).collect();
    batches.iter().map(RecordBatch::num_rows).sum()
}

fn setl_parquet_read(path: &Path) -> usize {
    ParquetReader::new().with_batch_size(BATCH).read(path).expect("read").num_rows()
}

fn raw_parquet_write(data: &Dataset, path: &Path) {
    let properties = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let mut writer =
        ArrowWriter::try_new(File::create(path).expect("file"), schema(), Some(properties)).expect("writer");
    for batch in data.batches() {
        writer.write(batch).expect("write");
    }
    writer.close().expect("close");
}

fn setl_parquet_write(data: &Dataset, path: &Path, sync: bool) {
    ParquetWriter::new().with_mode(SaveMode::ErrorIfExists).with_sync(sync).write(data, path).expect("write");
}

/// Median of `runs` alternating timings of `raw` and `setl`; `reset` runs untimed before each.
fn paired(runs: usize, mut reset: impl FnMut(), mut raw: impl FnMut(), mut setl: impl FnMut()) -> (Duration, Duration) {
    let (mut raws, mut setls) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        reset();
        let started = Instant::now();
        raw();
        raws.push(started.elapsed());
        reset();
        let started = Instant::now();
        setl();
        setls.push(started.elapsed());
    }
    raws.sort();
    setls.sort();
    (raws[runs / 2], setls[runs / 2])
}

fn report(what: &str, bytes: u64, (raw, setl): (Duration, Duration)) {
    let mbps = |d: Duration| bytes as f64 / 1e6 / d.as_secs_f64();
    let overhead = (setl.as_secs_f64() / raw.as_secs_f64() - 1.0) * 100.0;
    println!(
        "{what}: raw {:.1} MB/s, setl-arrow {:.1} MB/s, overhead {overhead:+.1}% (target <= +5%, ratio {:.3})",
        mbps(raw),
        mbps(setl),
        setl.as_secs_f64() / raw.as_secs_f64()
    );
}

struct Files {
    _dir: tempfile::TempDir,
    csv: PathBuf,
    parquet: PathBuf,
    out_raw: PathBuf,
    out_setl: PathBuf,
}

impl Files {
    /// Removes the outputs of writes, so every write creates a new file (untimed): replacing a
    /// file costs the file system differently for a truncate and for a rename.
    fn reset(&self) {
        let _ = std::fs::remove_file(&self.out_raw);
        let _ = std::fs::remove_file(&self.out_setl);
    }
}

fn files(data: &Dataset) -> Files {
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = dir.path().join("data.csv");
    let parquet = dir.path().join("data.parquet");
    raw_csv_write(data, &csv);
    raw_parquet_write(data, &parquet);
    assert_eq!(raw_csv_read(&csv), ROWS);
    assert_eq!(setl_csv_read(&csv), ROWS);
    assert_eq!(setl_parquet_read(&parquet), ROWS);
    let out_raw = dir.path().join("out-raw");
    let out_setl = dir.path().join("out-setl");
    Files { _dir: dir, csv, parquet, out_raw, out_setl }
}

fn connectors(c: &mut Criterion) {
    let data = dataset();
    let f = files(&data);
    let csv_bytes = std::fs::metadata(&f.csv).expect("csv").len();
    let parquet_bytes = std::fs::metadata(&f.parquet).expect("parquet").len();
    println!(
        "data: {ROWS} rows, CSV {:.1} MB, Parquet (snappy) {:.1} MB",
        csv_bytes as f64 / 1e6,
        parquet_bytes as f64 / 1e6
    );

    report(
        "csv read",
        csv_bytes,
        paired(9, || (), || assert_eq!(raw_csv_read(&f.csv), ROWS), || assert_eq!(setl_csv_read(&f.csv), ROWS)),
    );
    report(
        "csv write (no fsync)",
        csv_bytes,
        paired(9, || f.reset(), || raw_csv_write(&data, &f.out_raw), || setl_csv_write(&data, &f.out_setl, false)),
    );
    report(
        "csv write (default: fsync before rename; raw does not sync)",
        csv_bytes,
        paired(9, || f.reset(), || raw_csv_write(&data, &f.out_raw), || setl_csv_write(&data, &f.out_setl, true)),
    );
    report(
        "parquet read",
        parquet_bytes,
        paired(
            9,
            || (),
            || assert_eq!(raw_parquet_read(&f.parquet), ROWS),
            || assert_eq!(setl_parquet_read(&f.parquet), ROWS),
        ),
    );
    report(
        "parquet write (no fsync)",
        parquet_bytes,
        paired(
            9,
            || f.reset(),
            || raw_parquet_write(&data, &f.out_raw),
            || setl_parquet_write(&data, &f.out_setl, false),
        ),
    );
    report(
        "parquet write (default: fsync before rename; raw does not sync)",
        parquet_bytes,
        paired(
            9,
            || f.reset(),
            || raw_parquet_write(&data, &f.out_raw),
            || setl_parquet_write(&data, &f.out_setl, true),
        ),
    );

    let mut group = c.benchmark_group("csv_read");
    group.throughput(Throughput::Bytes(csv_bytes)).sample_size(10);
    group.bench_function(BenchmarkId::from_parameter("raw"), |b| b.iter(|| raw_csv_read(&f.csv)));
    group.bench_function(BenchmarkId::from_parameter("setl"), |b| b.iter(|| setl_csv_read(&f.csv)));
    group.finish();

    let mut group = c.benchmark_group("csv_write");
    group.throughput(Throughput::Bytes(csv_bytes)).sample_size(10);
    group.bench_function(BenchmarkId::from_parameter("raw"), |b| {
        b.iter_batched(|| f.reset(), |()| raw_csv_write(&data, &f.out_raw), BatchSize::PerIteration)
    });
    group.bench_function(BenchmarkId::from_parameter("setl"), |b| {
        b.iter_batched(|| f.reset(), |()| setl_csv_write(&data, &f.out_setl, false), BatchSize::PerIteration)
    });
    group.bench_function(BenchmarkId::from_parameter("setl_fsync"), |b| {
        b.iter_batched(|| f.reset(), |()| setl_csv_write(&data, &f.out_setl, true), BatchSize::PerIteration)
    });
    group.finish();

    let mut group = c.benchmark_group("parquet_read");
    group.throughput(Throughput::Bytes(parquet_bytes)).sample_size(10);
    group.bench_function(BenchmarkId::from_parameter("raw"), |b| b.iter(|| raw_parquet_read(&f.parquet)));
    group.bench_function(BenchmarkId::from_parameter("setl"), |b| b.iter(|| setl_parquet_read(&f.parquet)));
    group.finish();

    let mut group = c.benchmark_group("parquet_write");
    group.throughput(Throughput::Bytes(parquet_bytes)).sample_size(10);
    group.bench_function(BenchmarkId::from_parameter("raw"), |b| {
        b.iter_batched(|| f.reset(), |()| raw_parquet_write(&data, &f.out_raw), BatchSize::PerIteration)
    });
    group.bench_function(BenchmarkId::from_parameter("setl"), |b| {
        b.iter_batched(|| f.reset(), |()| setl_parquet_write(&data, &f.out_setl, false), BatchSize::PerIteration)
    });
    group.bench_function(BenchmarkId::from_parameter("setl_fsync"), |b| {
        b.iter_batched(|| f.reset(), |()| setl_parquet_write(&data, &f.out_setl, true), BatchSize::PerIteration)
    });
    group.finish();
}

criterion_group!(benches, connectors);
criterion_main!(benches);
