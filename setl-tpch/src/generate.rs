//! Extract: TPC-H tables generated with `tpchgen-arrow`, written once as Parquet (and CSV for
//! lineitem and orders), reused by later runs.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use setl_datafusion::arrow::array::{RecordBatch, RecordBatchReader};
use setl_datafusion::arrow::csv::{Writer, WriterBuilder};
use setl_datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use setl_datafusion::arrow::error::ArrowError;
use setl_datafusion::write_atomic;
use tpchgen::generators::{
    CustomerGenerator, LineItemGenerator, NationGenerator, OrderGenerator, RegionGenerator, SupplierGenerator,
};
use tpchgen_arrow::{CustomerArrow, LineItemArrow, NationArrow, OrderArrow, RegionArrow, SupplierArrow};

/// A table of the job: its name, the columns the queries read, and whether a CSV copy is made.
pub struct Table {
    /// The table's name and its files' stem.
    pub name: &'static str,
    /// The columns the queries read (the only ones generated).
    pub columns: &'static [&'static str],
    /// Whether a CSV copy is written beside the Parquet file.
    pub csv: bool,
}

/// The tables queries 1, 3, 5, 6, 10 and 12 read, with the columns they need.
pub const TABLES: [Table; 6] = [
    Table {
        name: "lineitem",
        columns: &[
            "l_orderkey",
            "l_suppkey",
            "l_quantity",
            "l_extendedprice",
            "l_discount",
            "l_tax",
            "l_returnflag",
            "l_linestatus",
            "l_shipdate",
            "l_commitdate",
            "l_receiptdate",
            "l_shipmode",
        ],
        csv: true,
    },
    Table {
        name: "orders",
        columns: &["o_orderkey", "o_custkey", "o_orderdate", "o_orderpriority", "o_shippriority"],
        csv: true,
    },
    Table {
        name: "customer",
        columns: &[
            "c_custkey",
            "c_name",
            "c_address",
            "c_nationkey",
            "c_phone",
            "c_acctbal",
            "c_mktsegment",
            "c_comment",
        ],
        csv: false,
    },
    Table { name: "supplier", columns: &["s_suppkey", "s_nationkey"], csv: false },
    Table { name: "nation", columns: &["n_nationkey", "n_name", "n_regionkey"], csv: false },
    Table { name: "region", columns: &["r_regionkey", "r_name"], csv: false },
];

/// The file that says the tables of a directory are complete, and for which scale factor.
const MARKER: &str = "_tpch_tables";

/// Rows per Parquet row group: small enough for a parallel scan of SF 0.1 and for pruning.
const ROW_GROUP: usize = 128 * 1024;

/// The generated tables: where they are and how many rows each has.
#[derive(Debug, Clone)]
pub struct TpchFiles {
    /// The directory holding the tables.
    pub dir: PathBuf,
    /// Their scale factor.
    pub scale: f64,
    /// Rows per table, by name.
    pub rows: BTreeMap<String, u64>,
    /// Whether this run generated them (false: reused).
    pub generated: bool,
}

impl TpchFiles {
    /// The Parquet file of `table`.
    pub fn parquet(&self, table: &str) -> PathBuf {
        self.dir.join(format!("{table}.parquet"))
    }

    /// The CSV copy of `table` (lineitem and orders only).
    pub fn csv(&self, table: &str) -> PathBuf {
        self.dir.join(format!("{table}.csv"))
    }
}

/// The tables in `dir` at `scale`: reused when the marker says they are complete for that scale,
/// generated (in parallel on the current Rayon pool) otherwise.
pub fn ensure_tables(dir: &Path, scale: f64) -> setl_core::Result<TpchFiles> {
    if let Some(rows) = read_marker(dir, scale) {
        return Ok(TpchFiles { dir: dir.to_path_buf(), scale, rows, generated: false });
    }
    std::fs::create_dir_all(dir).map_err(|error| {
        setl_core::Error::msg(format!("cannot create the data directory {}: {error}", dir.display()))
    })?;
    check_free_space(dir, scale)?;
    let results: Vec<setl_core::Result<(String, u64)>> = {
        use rayon::prelude::*;
        TABLES.par_iter().map(|table| generate(dir, scale, table).map(|rows| (table.name.to_owned(), rows))).collect()
    };
    let mut rows = BTreeMap::new();
    for result in results {
        let (name, count) = result?;
        rows.insert(name, count);
    }
    let mut text = format!("scale {scale}\n");
    for (name, count) in &rows {
        text.push_str(&format!("{name} {count}\n"));
    }
    write_atomic(&dir.join(MARKER), |file| Ok(file.write_all(text.as_bytes())?))?;
    Ok(TpchFiles { dir: dir.to_path_buf(), scale, rows, generated: true })
}

/// Bytes the tables take per unit of scale (Parquet of every table and CSV of lineitem and
/// orders: 13 GB at scale 10), with a tenth more for the results and the temporary files.
const BYTES_PER_SCALE: f64 = 1.45e9;

/// Fails before anything is written when the file system of `dir` has not room for the tables.
fn check_free_space(dir: &Path, scale: f64) -> setl_core::Result<()> {
    let needed = BYTES_PER_SCALE * scale;
    let Some(free) = free_bytes(dir) else { return Ok(()) };
    if needed > free as f64 {
        return Err(setl_core::Error::msg(format!(
            "the TPC-H tables at scale {scale} need about {} in {}, which has {} free: \
             choose a smaller --scale or another --data",
            human(needed),
            dir.display(),
            human(free as f64)
        )));
    }
    Ok(())
}

#[cfg(unix)]
fn free_bytes(dir: &Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(dir).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(not(unix))]
fn free_bytes(_dir: &Path) -> Option<u64> {
    None
}

fn human(bytes: f64) -> String {
    match bytes {
        b if !b.is_finite() => "more bytes than a float counts".to_owned(),
        b if b >= 1e18 => format!("{b:.1e} bytes"),
        b if b >= 1e15 => format!("{:.1} PB", b / 1e15),
        b if b >= 1e12 => format!("{:.1} TB", b / 1e12),
        b if b >= 1e9 => format!("{:.1} GB", b / 1e9),
        b => format!("{:.0} MB", b / 1e6),
    }
}

fn read_marker(dir: &Path, scale: f64) -> Option<BTreeMap<String, u64>> {
    let text = std::fs::read_to_string(dir.join(MARKER)).ok()?;
    let mut lines = text.lines();
    let found: f64 = lines.next()?.strip_prefix("scale ")?.parse().ok()?;
    if found != scale {
        return None;
    }
    lines
        .map(|line| {
            let (name, count) = line.split_once(' ')?;
            Some((name.to_owned(), count.parse().ok()?))
        })
        .collect()
}

fn reader(table: &str, scale: f64) -> Box<dyn RecordBatchReader + Send> {
    match table {
        "lineitem" => Box::new(LineItemArrow::new(LineItemGenerator::new(scale, 1, 1))),
        "orders" => Box::new(OrderArrow::new(OrderGenerator::new(scale, 1, 1))),
        "customer" => Box::new(CustomerArrow::new(CustomerGenerator::new(scale, 1, 1))),
        "supplier" => Box::new(SupplierArrow::new(SupplierGenerator::new(scale, 1, 1))),
        "nation" => Box::new(NationArrow::new(NationGenerator::new(scale, 1, 1))),
        "region" => Box::new(RegionArrow::new(RegionGenerator::new(scale, 1, 1))),
        other => unreachable!("no generator for table {other}"),
    }
}

/// Batches generated ahead of the writers: while the writers encode one chunk, the next one is
/// generated.
const CHUNK: usize = 16;

/// The next `CHUNK` batches of `batches` (fewer at the end, none when it is exhausted).
fn next_chunk(batches: &mut (dyn RecordBatchReader + Send)) -> Result<Vec<RecordBatch>, ArrowError> {
    batches.take(CHUNK).collect()
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Generates one table into its Parquet file (and CSV file), each written atomically.
///
/// Generating a chunk of batches, encoding it as Parquet and encoding it as CSV are three
/// independent pieces of work: the next chunk is generated while both writers encode the
/// current one, as Rayon tasks on the current pool (the same rows, in the same order, as a
/// single loop would write).
fn generate(dir: &Path, scale: f64, table: &Table) -> setl_core::Result<u64> {
    let mut batches = reader(table.name, scale);
    let schema = batches.schema();
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP))
        .build();
    let parquet_path = dir.join(format!("{}.parquet", table.name));
    let csv_path = dir.join(format!("{}.csv", table.name));
    let mut rows = 0_u64;
    write_atomic(&parquet_path, |parquet_file| {
        let mut parquet = ArrowWriter::try_new(parquet_file, schema.clone(), Some(properties))?;
        let mut write_chunks = |csv: Option<&mut Writer<BufWriter<&mut File>>>| -> Result<(), BoxError> {
            let mut csv = csv;
            let mut chunk = next_chunk(batches.as_mut())?;
            while !chunk.is_empty() {
                rows += chunk.iter().map(|batch| batch.num_rows() as u64).sum::<u64>();
                let encode = || -> Result<(), BoxError> {
                    let (parquet_done, csv_done) = rayon::join(
                        || chunk.iter().try_for_each(|batch| parquet.write(batch)),
                        || match csv.as_deref_mut() {
                            Some(csv) => chunk.iter().try_for_each(|batch| csv.write(batch)),
                            None => Ok(()),
                        },
                    );
                    parquet_done?;
                    csv_done?;
                    Ok(())
                };
                let (next, encoded) = rayon::join(|| next_chunk(batches.as_mut()), encode);
                encoded?;
                chunk = next?;
            }
            Ok(())
        };
        if table.csv {
            write_atomic(&csv_path, |csv_file: &mut File| {
                let mut csv = WriterBuilder::new().with_header(true).build(BufWriter::with_capacity(1 << 20, csv_file));
                write_chunks(Some(&mut csv))?;
                csv.into_inner().flush()?;
                Ok(())
            })?;
        } else {
            write_chunks(None)?;
        }
        parquet.close()?;
        Ok(())
    })?;
    Ok(rows)
}

/// The schema the CSV copy of `table` is read with: the Parquet schema with plain strings
/// (the CSV reader has no inference pass then, and parses each column to its type).
pub fn csv_schema(table: &str) -> SchemaRef {
    let schema = reader_schema(table);
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| match field.data_type() {
            DataType::Utf8View => field.as_ref().clone().with_data_type(DataType::Utf8),
            _ => field.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

fn reader_schema(table: &str) -> SchemaRef {
    match table {
        "lineitem" => LineItemArrow::schema_ref(),
        "orders" => OrderArrow::schema_ref(),
        "customer" => CustomerArrow::schema_ref(),
        "supplier" => SupplierArrow::schema_ref(),
        "nation" => NationArrow::schema_ref(),
        "region" => RegionArrow::schema_ref(),
        other => unreachable!("no schema for table {other}"),
    }
}
