//! Synthetic factories for the benches, wired at run time by a [`Shape`].
//!
//! Each node is one instance of a single `#[factory]` type, told apart by its output id
//! (`n0`, `n1`, ..) with [`FactoryExt::with_id`], its inputs pointed at its producers' ids with
//! `with_input_id`. So a chain of 10,000 factories is 10,000 instances, not 10,000 types.

// Library code needs no `unsafe`; tests that must (a counting allocator) say why with `expect`.
#![forbid(unsafe_code)]

use setl_core::prelude::*;

/// With `--features mimalloc`, every bench and example of this crate allocates with mimalloc
/// instead of the system's malloc (glibc's, here), for comparing the two; the calibration line
/// says which.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The global allocator the benches run with.
const ALLOCATOR: &str = if cfg!(feature = "mimalloc") { "mimalloc" } else { "the system's malloc" };

/// The most inputs a node of a [`Shape`] may have.
pub const MAX_INPUTS: usize = 3;

/// The graph the synthetic factories form.
#[derive(Debug, Clone, Default)]
pub struct Shape {
    /// Per node: the nodes it consumes.
    pub inputs: Vec<Vec<usize>>,
    /// Per node: units of CPU work done in `process` (see [`spin`]).
    pub work: Vec<u64>,
}

impl Shape {
    /// `count` nodes in a chain: each consumes the previous one.
    pub fn chain(count: usize) -> Self {
        Shape { inputs: (0..count).map(|i| if i == 0 { vec![] } else { vec![i - 1] }).collect(), work: vec![0; count] }
    }

    /// One source and `consumers` consumers of it (`consumers + 1` nodes).
    pub fn fan_out(consumers: usize) -> Self {
        let count = consumers + 1;
        Shape { inputs: (0..count).map(|i| if i == 0 { vec![] } else { vec![0] }).collect(), work: vec![0; count] }
    }

    /// A random DAG: each node consumes up to `max_inputs` earlier nodes, work in `work_range`.
    pub fn random(count: usize, max_inputs: usize, work_range: std::ops::Range<u64>, seed: u64) -> Self {
        let mut rng = SplitMix(seed);
        let mut shape = Shape::default();
        for node in 0..count {
            let wanted = if node == 0 { 0 } else { (rng.next() as usize) % (max_inputs + 1) };
            let mut inputs: Vec<usize> = (0..wanted).map(|_| (rng.next() as usize) % node).collect();
            inputs.sort_unstable();
            inputs.dedup();
            shape.inputs.push(inputs);
            shape.work.push(work_range.start + rng.next() % (work_range.end - work_range.start));
        }
        shape
    }

    /// The depth of each node (longest path from a source, in nodes), for stage-barrier layouts.
    pub fn levels(&self) -> Vec<usize> {
        let mut level = vec![0; self.inputs.len()];
        for node in 0..self.inputs.len() {
            level[node] = self.inputs[node].iter().map(|&input| level[input] + 1).max().unwrap_or(0);
        }
        level
    }
}

/// A small seeded generator, so the benches need no RNG crate.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// CPU work proportional to `units`, that the optimizer cannot remove.
pub fn spin(units: u64) -> u64 {
    let mut acc = units;
    for i in 0..units * 64 {
        acc = std::hint::black_box(acc.rotate_left(5) ^ i);
    }
    acc
}

/// How fast this machine is right now, for the first line of a bench's output: the median of
/// 201 runs of [`multiply_chain`] (CPU) and [`memory_latency_ns`]. On a shared machine both move
/// with the neighbours' load, so figures from a busy box can be told apart from a change in the
/// code.
pub fn calibration() -> String {
    let mut timings: Vec<std::time::Duration> = (0..201)
        .map(|_| {
            let started = std::time::Instant::now();
            std::hint::black_box(multiply_chain(std::hint::black_box(CHAIN_STEPS)));
            started.elapsed()
        })
        .collect();
    timings.sort();
    format!(
        "{CHAIN_STEPS} dependent multiplications take {:.1} µs (median of 201), a load from memory {:.0} ns; \
         allocator: {ALLOCATOR}",
        timings[100].as_nanos() as f64 / 1000.0,
        memory_latency_ns()
    )
}

/// The steps of the calibration's [`multiply_chain`]: about 33 µs on the project's machine.
const CHAIN_STEPS: u64 = 25_000;

/// `steps` multiplications, each waiting for the one before: bound by the multiplier's latency
/// whatever the loop's placement in the binary. [`spin`] is not a calibration: a loop of cheap
/// instructions runs at the speed the front end feeds it, and the same code ran in 14 µs in one
/// build and 27-29 µs in another at the same minute, by where the linker put it.
pub fn multiply_chain(steps: u64) -> u64 {
    let mut acc: u64 = 0x9E37_79B9_7F4A_7C15;
    for step in 0..steps {
        acc = acc.wrapping_mul(0xBF58_476D_1CE4_E5B9) ^ step;
    }
    acc
}

/// The time of one dependent load from memory, in ns: a walk of a random cycle through 16 MiB,
/// more than a core's caches hold. On a shared machine it moves with the neighbours' memory
/// traffic, which CPU-bound calibration does not see; memory-bound figures move with it.
pub fn memory_latency_ns() -> f64 {
    const SLOTS: usize = 1 << 22;
    const HOPS: usize = 1 << 20;
    // Sattolo's shuffle: one cycle through every slot, so the walk never settles in cache.
    let mut next: Vec<u32> = (0..SLOTS as u32).collect();
    let mut rng = SplitMix(7);
    for i in (1..SLOTS).rev() {
        let j = (rng.next() as usize) % i;
        next.swap(i, j);
    }
    let mut at = 0usize;
    let started = std::time::Instant::now();
    for _ in 0..HOPS {
        at = next[at] as usize;
    }
    std::hint::black_box(at);
    started.elapsed().as_nanos() as f64 / HOPS as f64
}

/// A synthetic factory: adds up its inputs and its index, after `work` units of CPU work.
/// Inputs left unbound stay empty.
#[factory]
#[derive(Default)]
pub struct Node {
    #[delivery(optional)]
    a: Delivery<u64>,
    #[delivery(optional)]
    b: Delivery<u64>,
    #[delivery(optional)]
    c: Delivery<u64>,
    index: u64,
    work: u64,
    value: u64,
}

impl Factory for Node {
    type Output = u64;

    fn process(&mut self) -> Result<()> {
        let inputs = [&self.a, &self.b, &self.c].into_iter().filter_map(|input| input.try_get().copied());
        let sum = inputs.fold(self.index, u64::wrapping_add);
        self.value = sum.wrapping_add(if self.work > 0 { spin(self.work) & 1 } else { 0 });
        Ok(())
    }

    fn get(&self) -> u64 {
        self.value
    }
}

/// A context of two threads, or `SETL_BENCH_THREADS`.
pub fn setl() -> Setl {
    let threads = std::env::var("SETL_BENCH_THREADS").ok().and_then(|threads| threads.parse().ok()).unwrap_or(2);
    Setl::builder().threads(threads).build().expect("a thread pool")
}

/// The most nodes a [`Shape`] may have.
pub const MAX_NODES: usize = 10_001;

/// The output id of node `index`, made once per process (an instance given it copies the text
/// into its own signature).
pub fn node_id(index: usize) -> &'static str {
    static IDS: std::sync::LazyLock<Vec<String>> =
        std::sync::LazyLock::new(|| (0..MAX_NODES).map(|index| format!("n{index}")).collect());
    &IDS[index]
}

/// The index of a node from its benchmark name (`Node[n12]` is 12).
pub fn node_index(name: &str) -> Option<usize> {
    name.strip_prefix("Node[n")?.strip_suffix(']')?.parse().ok()
}

/// Node `index` of `shape`, as an instance with its ids set.
pub fn node(shape: &Shape, index: usize) -> BoxedFactory {
    let inputs = &shape.inputs[index];
    assert!(inputs.len() <= MAX_INPUTS, "node {index} has more than {MAX_INPUTS} inputs");
    let node = Node { index: index as u64, work: shape.work[index], ..Node::default() };
    let mut boxed = node.with_id(node_id(index));
    for (field, &input) in ["a", "b", "c"].into_iter().zip(inputs) {
        boxed = boxed.with_input_id(field, node_id(input));
    }
    boxed
}

/// A pipeline of `shape`'s nodes; `stage_of` places nodes in stages (default: one stage holding
/// all).
pub fn pipeline(setl: &Setl, shape: &Shape, stage_of: Option<&[usize]>) -> Pipeline {
    let stages = stage_of.map_or(1, |stage_of| stage_of.iter().max().map_or(1, |max| max + 1));
    let mut built: Vec<Stage> = (0..stages).map(|_| Stage::new()).collect();
    for index in 0..shape.inputs.len() {
        let stage = stage_of.map_or(0, |stage_of| stage_of[index]);
        let taken = std::mem::take(&mut built[stage]);
        built[stage] = taken.add_factory(node(shape, index));
    }
    let mut pipeline = setl.new_pipeline();
    for stage in built {
        pipeline.add_stage(stage);
    }
    pipeline
}
