//! Spill directories are named with their process id, and a run removes those of dead runs.

use std::path::Path;

use setl_core::prelude::*;
use setl_core::{BoxError, Storable};

#[derive(Debug, Clone, PartialEq)]
struct Blob(Vec<u8>);

impl Storable for Blob {
    const FILE_EXTENSION: &'static str = "blob";

    fn byte_size(&self) -> usize {
        self.0.len()
    }

    fn spill(&self, path: &Path) -> Result<(), BoxError> {
        Ok(std::fs::write(path, &self.0)?)
    }

    fn reload(path: &Path) -> Result<Self, BoxError> {
        Ok(Blob(std::fs::read(path)?))
    }
}

#[factory]
#[derive(Default)]
struct Source;

impl Factory for Source {
    type Output = Blob;
    fn get(&self) -> Blob {
        Blob(vec![7; 100])
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_run_removes_the_spill_directories_of_dead_runs_only() -> setl_core::Result<()> {
    let base = tempfile::tempdir()?;
    let mut child = std::process::Command::new("true").spawn()?;
    let dead = child.id();
    child.wait()?;
    // What an aborted run leaves: its spill directory with a spill file in it.
    let dead_dir = base.path().join(format!("setl-spill-{dead}-Ab12Cd"));
    std::fs::create_dir_all(&dead_dir)?;
    std::fs::write(dead_dir.join("0000-Source.blob"), "x")?;
    let live_dir = base.path().join(format!("setl-spill-{}-Ef34Gh", std::process::id()));
    std::fs::create_dir_all(&live_dir)?;

    let setl = Setl::builder().threads(1).memory_budget(0).spill_dir(base.path()).build()?;
    let mut pipeline = setl.new_pipeline();
    pipeline.keep_all_outputs(true);
    pipeline.add_stage_from_type::<Source>();
    pipeline.run()?;
    let dir = pipeline.spill_dir().expect("the run spilled").to_owned();
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with(&format!("setl-spill-{}-", std::process::id())), "{name}");
    assert!(!dead_dir.exists(), "the dead run's spill directory is removed");
    assert!(live_dir.exists(), "a live process's spill directory stays");
    Ok(())
}
