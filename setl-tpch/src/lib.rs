//! The main job of setl-rs: TPC-H queries 1, 3, 5, 6, 10 and 12 as a pipeline on DataFusion. The
//! `setl-tpch` command (`src/main.rs`) runs it; its tests and the `tpch` bench use this library.
//!
//! - Extract: [`Extract`] makes sure the tables exist (generated once, then reused).
//! - Transform: one reader factory per table, one factory per query. Readers of tables that
//!   several queries use (lineitem, orders, customer) hand on their scan as a shared frame (see
//!   [`Share`]); the others hand on lazy scans, which fuse into the consuming query (supplier,
//!   nation and region for Q5 and Q10).
//! - Load: [`Load`] runs the queries that are still plans together, so that a shared table is
//!   read once for all of them, and writes every result as Parquet and CSV, atomically.

#![forbid(unsafe_code)]

pub mod generate;
pub mod queries;
pub mod report;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use setl_core::prelude::*;
use setl_datafusion::{write_csv, write_parquet, CsvScan, Engine, Frame, ParquetScan, Session};

use generate::{TpchFiles, TABLES};
use queries::Query;

/// Where the big tables are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Every table from Parquet.
    Parquet,
    /// lineitem and orders from their CSV copies (parsed in parallel), the rest from Parquet.
    Csv,
}

/// How the tables that several queries read (lineitem, orders, customer) reach them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Share {
    /// Read once, streamed to every query while they run together (`Frame::shared`): the query
    /// factories plan, and [`Load`] runs the plans at once. The default.
    Stream,
    /// Read once and held whole (`Frame::materialize`), each query run by its own factory.
    Materialize,
    /// Not shared: every query scans the files itself, run by its own factory.
    None,
}

/// How to run the job.
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// TPC-H scale factor (1: about 1 GB of tables).
    pub scale: f64,
    /// Where the tables are, or are generated once.
    pub data: PathBuf,
    /// Where the results are written.
    pub out: PathBuf,
    /// Threads of the `Setl` and of DataFusion.
    pub threads: usize,
    /// Which copy of lineitem and orders the readers read.
    pub format: Format,
    /// How the tables several queries read are shared.
    pub share: Share,
    /// Run independent factories at once (else one factory at a time).
    pub parallel: bool,
    /// Write the results (the Load step).
    pub write: bool,
    /// Partitions each query is planned for; `None`: see [`JobConfig::partitions_per_query`].
    pub query_partitions: Option<usize>,
}

impl JobConfig {
    /// The defaults: Parquet, shared tables streamed, factories in parallel, results written.
    pub fn new(scale: f64, data: impl Into<PathBuf>, out: impl Into<PathBuf>, threads: usize) -> Self {
        JobConfig {
            scale,
            data: data.into(),
            out: out.into(),
            threads,
            format: Format::Parquet,
            share: Share::Stream,
            parallel: true,
            write: true,
            query_partitions: None,
        }
    }

    /// Partitions per query: as set, else all the threads when queries run one at a time, and
    /// the threads shared among the queries that can run at once otherwise (the six queries
    /// are independent: on 2 threads, two queries of 1 partition each instead of one query of
    /// 2 partitions, which saves the hash repartitioning of its joins and aggregates). Streamed
    /// tables make the queries run together whatever `parallel` says.
    pub fn partitions_per_query(&self) -> usize {
        let threads = self.threads.max(1);
        match self.query_partitions {
            Some(partitions) => partitions.max(1),
            None if self.parallel || self.share == Share::Stream => threads.div_ceil(threads.min(queries::ALL.len())),
            None => threads,
        }
    }
}

/// Extract: the tables, generated when missing.
#[factory]
pub struct Extract {
    dir: PathBuf,
    scale: f64,
    files: Option<TpchFiles>,
}

impl Factory for Extract {
    type Output = TpchFiles;

    fn read(&mut self) -> Result<()> {
        self.files = Some(generate::ensure_tables(&self.dir, self.scale)?);
        Ok(())
    }

    fn get(&self) -> TpchFiles {
        self.files.clone().expect("set in read")
    }
}

/// How a reader gets its table.
#[derive(Clone)]
pub struct ReadSettings {
    engine: Engine,
    format: Format,
    share: Share,
}

/// Reads `table` (its needed columns) as a frame: shared as the settings say when several
/// queries read it, else a lazy scan.
fn read_table(settings: &ReadSettings, files: &TpchFiles, table: &str, shared: bool) -> Result<Frame> {
    let columns = TABLES.iter().find(|t| t.name == table).map(|t| t.columns).unwrap_or_default();
    let session = settings.engine.session();
    let csv = settings.format == Format::Csv && TABLES.iter().any(|t| t.name == table && t.csv);
    let frame = if csv {
        CsvScan::new(files.csv(table))
            .schema(generate::csv_schema(table))
            .columns(columns.iter().copied())
            .read(&session)?
    } else {
        ParquetScan::new(files.parquet(table)).columns(columns.iter().copied()).read(&session)?
    };
    match settings.share {
        Share::Stream if shared => Ok(frame.shared()),
        Share::Materialize if shared => Ok(frame.materialize()?),
        _ => Ok(frame),
    }
}

macro_rules! reader {
    ($(#[$doc:meta])* $name:ident, $table:literal, shared: $shared:expr) => {
        $(#[$doc])*
        #[factory]
        pub struct $name {
            #[delivery(producer = Extract)]
            files: Delivery<TpchFiles>,
            settings: ReadSettings,
            frame: Option<Frame>,
        }

        impl $name {
            /// The reader, with how to read (format, sharing, partitions).
            pub fn new(settings: ReadSettings) -> Self {
                $name { files: Delivery::new(), settings, frame: None }
            }
        }

        impl Factory for $name {
            type Output = Frame;

            fn read(&mut self) -> Result<()> {
                self.frame = Some(read_table(&self.settings, self.files.get(), $table, $shared)?);
                Ok(())
            }

            fn get(&self) -> Frame {
                self.frame.clone().expect("set in read")
            }
        }
    };
}

reader!(
    /// lineitem: used by every query, shared.
    Lineitem, "lineitem", shared: true
);
reader!(
    /// orders: used by Q3, Q5, Q10 and Q12.
    Orders, "orders", shared: true
);
reader!(
    /// customer: used by Q3, Q5 and Q10.
    Customer, "customer", shared: true
);
reader!(
    /// supplier: only Q5; a lazy scan that fuses into it.
    Supplier, "supplier", shared: false
);
reader!(
    /// nation: Q5 and Q10; small, a lazy scan that fuses into each.
    Nation, "nation", shared: false
);
reader!(
    /// region: only Q5; a lazy scan that fuses into it.
    Region, "region", shared: false
);

/// What a query factory shares: the engine, the partitions it plans for, whether it runs.
#[derive(Clone)]
pub struct QuerySettings {
    engine: Engine,
    partitions: usize,
    /// Hand on the plan, for [`Load`] to run with the others (streamed tables), else run it.
    lazy: bool,
}

/// Plans `query` over `tables` in a fresh session; runs it unless the settings say lazy.
fn run_query(settings: &QuerySettings, query: &Query, tables: &[(&str, &Frame)]) -> Result<Frame> {
    let session: Session = settings.engine.session().with_target_partitions(settings.partitions);
    for (name, frame) in tables {
        session.register(name, frame)?;
    }
    let planned = session.sql(query.name, query.sql)?;
    if settings.lazy {
        Ok(planned)
    } else {
        Ok(planned.materialize()?)
    }
}

macro_rules! query_factory {
    ($(#[$doc:meta])* $name:ident, $query:expr, { $($field:ident: $producer:ident),+ }) => {
        $(#[$doc])*
        #[factory]
        pub struct $name {
            $(
                // A plan keeps what it reads: the input itself is not needed after `process`.
                #[delivery(producer = $producer, release = process)]
                $field: Delivery<Frame>,
            )+
            settings: QuerySettings,
            result: Option<Frame>,
        }

        impl $name {
            /// The query, with how to plan it.
            pub fn new(settings: QuerySettings) -> Self {
                $name { $($field: Delivery::new(),)+ settings, result: None }
            }
        }

        impl Factory for $name {
            type Output = Frame;

            fn process(&mut self) -> Result<()> {
                let tables = [$((stringify!($field), self.$field.get())),+];
                self.result = Some(run_query(&self.settings, &$query, &tables)?);
                Ok(())
            }

            fn get(&self) -> Frame {
                self.result.clone().expect("set in process")
            }
        }
    };
}

query_factory!(
    /// TPC-H Q1, pricing summary report.
    Q1, queries::Q1, { lineitem: Lineitem }
);
query_factory!(
    /// TPC-H Q3, shipping priority.
    Q3, queries::Q3, { customer: Customer, orders: Orders, lineitem: Lineitem }
);
query_factory!(
    /// TPC-H Q5, local supplier volume.
    Q5, queries::Q5, {
        customer: Customer, orders: Orders, lineitem: Lineitem, supplier: Supplier, nation: Nation, region: Region
    }
);
query_factory!(
    /// TPC-H Q6, forecasting revenue change.
    Q6, queries::Q6, { lineitem: Lineitem }
);
query_factory!(
    /// TPC-H Q10, returned item reporting.
    Q10, queries::Q10, { customer: Customer, orders: Orders, lineitem: Lineitem, nation: Nation }
);
query_factory!(
    /// TPC-H Q12, shipping modes and order priority.
    Q12, queries::Q12, { orders: Orders, lineitem: Lineitem }
);

/// The results of the queries, by name, each holding its data.
pub type Results = Vec<(&'static str, Frame)>;

/// Load: runs the queries that are still plans together (a streamed table is read once for all
/// of them), then writes every result as `<out>/<query>.parquet` and `.csv`, each atomically.
#[factory]
pub struct Load {
    #[delivery(producer = Q1, release = process)]
    q1: Delivery<Frame>,
    #[delivery(producer = Q3, release = process)]
    q3: Delivery<Frame>,
    #[delivery(producer = Q5, release = process)]
    q5: Delivery<Frame>,
    #[delivery(producer = Q6, release = process)]
    q6: Delivery<Frame>,
    #[delivery(producer = Q10, release = process)]
    q10: Delivery<Frame>,
    #[delivery(producer = Q12, release = process)]
    q12: Delivery<Frame>,
    engine: Engine,
    out: PathBuf,
    results: Results,
}

impl Load {
    /// Runs the queries with `engine` and writes their results into `out`.
    pub fn new(engine: Engine, out: PathBuf) -> Self {
        Load {
            q1: Delivery::new(),
            q3: Delivery::new(),
            q5: Delivery::new(),
            q6: Delivery::new(),
            q10: Delivery::new(),
            q12: Delivery::new(),
            engine,
            out,
            results: Vec::new(),
        }
    }
}

impl Factory for Load {
    type Output = Results;

    fn process(&mut self) -> Result<()> {
        let frames = [self.q1.get(), self.q3.get(), self.q5.get(), self.q6.get(), self.q10.get(), self.q12.get()];
        let datasets = Frame::collect_all(&frames)?;
        self.results = queries::ALL
            .iter()
            .zip(frames)
            .zip(datasets)
            .map(|((query, frame), dataset)| {
                let result = if frame.is_materialized() {
                    frame.clone()
                } else {
                    Frame::from_dataset(&self.engine, format!("query `{}`", query.name), dataset)
                };
                (query.name, result)
            })
            .collect();
        Ok(())
    }

    /// The twelve files are encoded at once on the engine's workers (within the thread budget),
    /// into a staging directory inside `--out`, and moved into place together only when all of
    /// them are written: a failed run leaves the previous results complete and untouched.
    fn write(&mut self) -> Result<()> {
        let results: Vec<(&'static str, setl_arrow::Dataset)> =
            self.results.iter().map(|(name, frame)| Ok((*name, frame.collect()?))).collect::<Result<_>>()?;
        let names: Vec<String> =
            results.iter().flat_map(|(name, _)| [format!("{name}.parquet"), format!("{name}.csv")]).collect();
        let staging = Staging::new(&self.out, &names)?;
        let dir = staging.dir().to_path_buf();
        self.engine.run(async move {
            let mut writes = tokio::task::JoinSet::new();
            for (name, dataset) in results {
                let parquet = dir.join(format!("{name}.parquet"));
                let csv = dir.join(format!("{name}.csv"));
                let for_csv = dataset.clone();
                writes.spawn(async move { write_parquet(&dataset, parquet) });
                writes.spawn(async move { write_csv(&for_csv, csv) });
            }
            while let Some(written) = writes.join_next().await {
                match written {
                    Ok(result) => result?,
                    Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                    Err(error) => return Err(Error::msg(format!("a write was cancelled: {error}"))),
                }
            }
            Ok::<_, Error>(())
        })?;
        staging.commit()
    }

    fn get(&self) -> Results {
        self.results.clone()
    }
}

/// Result files staged in a hidden directory inside the output directory, then moved into
/// place together. Dropped without [`commit`](Self::commit), it removes what it staged.
pub struct Staging {
    out: PathBuf,
    names: Vec<String>,
    dir: tempfile::TempDir,
}

impl Staging {
    /// Checks that every one of `names` in `out` is a plain file or absent (a directory or a
    /// link in the way fails the run before anything is written), then makes the staging
    /// directory.
    pub fn new(out: &Path, names: &[String]) -> Result<Staging> {
        for name in names {
            let target = out.join(name);
            if let Ok(metadata) = std::fs::symlink_metadata(&target) {
                if !metadata.file_type().is_file() {
                    let what = if metadata.is_dir() { "a directory" } else { "a link or special file" };
                    return Err(Error::msg(format!(
                        "{} is {what}, where the job writes a result file: move it away or choose another --out",
                        target.display()
                    )));
                }
            }
        }
        // What killed runs left (their staging directories) goes first.
        setl_core::fs::sweep_dead(out)?;
        let dir = tempfile::Builder::new()
            .prefix(&setl_core::fs::temp_prefix(Some("staging")))
            .tempdir_in(out)
            .map_err(|error| Error::msg(format!("cannot stage the results in {}: {error}", out.display())))?;
        Ok(Staging { out: out.to_path_buf(), names: names.to_vec(), dir })
    }

    /// The directory the files are written to, under their final names.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Moves every staged file into place (each rename atomic), then syncs the directory.
    pub fn commit(self) -> Result<()> {
        for name in &self.names {
            let staged = self.dir.path().join(name);
            let target = self.out.join(name);
            std::fs::rename(&staged, &target).map_err(|error| {
                Error::msg(format!("cannot move {} into place as {}: {error}", staged.display(), target.display()))
            })?;
        }
        Ok(setl_core::fs::sync_dir(&self.out)?)
    }
}

/// On SIGINT or SIGTERM, removes this process's temporaries (half-written tables, staged
/// results) from `dirs`, then exits with 128 + the signal's number, as a shell reports it.
/// Without it they would stay until the next run's sweep removes them.
pub fn clean_up_on_signal(dirs: Vec<PathBuf>) -> Result<()> {
    #[cfg(unix)]
    {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
        std::thread::Builder::new().name("signals".to_owned()).spawn(move || {
            if let Some(signal) = signals.forever().next() {
                for dir in &dirs {
                    remove_own_temporaries(dir);
                }
                eprintln!("interrupted: this run's temporary files are removed, earlier results are as they were");
                std::process::exit(128 + signal);
            }
        })?;
    }
    #[cfg(not(unix))]
    let _ = dirs;
    Ok(())
}

/// Removes the temporaries of this process in `dir` (see `setl_core::fs::temp_prefix`).
fn remove_own_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        if setl_core::fs::leftover_pid(&entry.file_name()) == Some(std::process::id()) {
            let path = entry.path();
            let _ = match entry.file_type() {
                Ok(kind) if kind.is_dir() => std::fs::remove_dir_all(&path),
                _ => std::fs::remove_file(&path),
            };
        }
    }
}

/// The job's pipeline: Extract, then the readers, then the queries, then Load (stages group
/// them for the report; the run follows the data flow).
pub fn pipeline(setl: &Setl, config: &JobConfig) -> Result<Pipeline> {
    let engine = Engine::of(setl)?;
    if config.write {
        std::fs::create_dir_all(&config.out).map_err(|error| {
            Error::msg(format!("cannot create the output directory {}: {error}", config.out.display()))
        })?;
    }
    let read = ReadSettings { engine: engine.clone(), format: config.format, share: config.share };
    let query = QuerySettings {
        engine: engine.clone(),
        partitions: config.partitions_per_query(),
        lazy: config.share == Share::Stream,
    };
    let mode = if config.parallel { ExecutionMode::Dataflow } else { ExecutionMode::StageBarrier };
    let mut pipeline = setl.new_pipeline();
    pipeline.benchmark(true).mode(mode);
    let parallel = config.parallel;
    pipeline
        .add_stage(Stage::new().add_factory(Extract { dir: config.data.clone(), scale: config.scale, files: None }))
        .add_stage(
            Stage::new()
                .parallel(parallel)
                .add_factory(Lineitem::new(read.clone()))
                .add_factory(Orders::new(read.clone()))
                .add_factory(Customer::new(read.clone()))
                .add_factory(Supplier::new(read.clone()))
                .add_factory(Nation::new(read.clone()))
                .add_factory(Region::new(read)),
        )
        .add_stage(
            Stage::new()
                .parallel(parallel)
                .add_factory(Q1::new(query.clone()))
                .add_factory(Q3::new(query.clone()))
                .add_factory(Q5::new(query.clone()))
                .add_factory(Q6::new(query.clone()))
                .add_factory(Q10::new(query.clone()))
                .add_factory(Q12::new(query)),
        )
        .add_stage(Stage::new().writable(config.write).add_factory(Load::new(engine, config.out.clone())));
    pipeline.keep_output::<Extract>();
    Ok(pipeline)
}

/// The results of a pipeline that ran, by query name.
pub fn results(pipeline: &Pipeline) -> Result<Arc<Results>> {
    pipeline.output::<Load>()
}

/// The hand-written baseline: plain DataFusion on a Tokio runtime of `threads` workers, every
/// table registered from its file, the queries run one after the other, each result written
/// as the pipeline writes it. Returns the results.
pub fn handwritten(files: &TpchFiles, config: &JobConfig) -> Result<Vec<(&'static str, setl_arrow::Dataset)>> {
    use setl_datafusion::datafusion::prelude::{CsvReadOptions, ParquetReadOptions, SessionConfig, SessionContext};

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(config.threads).enable_all().build()?;
    let context = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(config.threads));
    let files = files.clone();
    let format = config.format;
    let write = config.write;
    let out = config.out.clone();
    runtime.block_on(async move {
        for table in &TABLES {
            let path = std::path::absolute(files.parquet(table.name))?;
            if format == Format::Csv && table.csv {
                let schema = generate::csv_schema(table.name);
                let csv = std::path::absolute(files.csv(table.name))?;
                let options = CsvReadOptions::new().has_header(true).schema(&schema);
                context.register_csv(table.name, csv.to_string_lossy().as_ref(), options).await?;
            } else {
                context
                    .register_parquet(table.name, path.to_string_lossy().as_ref(), ParquetReadOptions::default())
                    .await?;
            }
        }
        let mut rows = Vec::new();
        for query in queries::ALL {
            let frame = context.sql(query.sql).await?;
            let schema = Arc::new(frame.schema().as_arrow().clone());
            let batches = frame.collect().await?;
            let dataset =
                setl_arrow::Dataset::try_new(batches.first().map(|batch| batch.schema()).unwrap_or(schema), batches)?;
            if write {
                write_parquet(&dataset, out.join(format!("{}.parquet", query.name)))?;
                write_csv(&dataset, out.join(format!("{}.csv", query.name)))?;
            }
            rows.push((query.name, dataset));
        }
        Ok::<_, Error>(rows)
    })
}

/// Rows read (the tables the queries scan) and rows written (the results).
pub fn row_counts(files: &TpchFiles, results: &[(&'static str, Frame)]) -> (u64, usize) {
    let rows_in = TABLES.iter().filter_map(|table| files.rows.get(table.name)).sum();
    let rows_out = results.iter().filter_map(|(_, frame)| frame.materialized()).map(|d| d.num_rows()).sum();
    (rows_in, rows_out)
}

/// The default data directory for `scale`.
pub fn default_data_dir(scale: f64) -> PathBuf {
    Path::new("target").join("tpch").join(format!("sf{scale}")).join("data")
}

/// The default output directory for `scale`.
pub fn default_out_dir(scale: f64) -> PathBuf {
    Path::new("target").join("tpch").join(format!("sf{scale}")).join("out")
}
