//! Synthetic factories for the benches: up to 1,000 distinct factory types (`Node<0>` ..
//! `Node<9999>`) whose inputs, output ids and work are set at run time by a [`Shape`].
//!
//! A pipeline refuses two factories of one type, and `#[factory]` makes one type per struct, so
//! a chain of N factories needs N types. Const generics give them without N
//! struct declarations; the wiring `#[factory]` would generate is written by hand here, reading
//! the current shape (through setl-core's hidden `__private` API, as generated code does).

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, RwLock};

use setl_core::__private::{Factory, FactoryWiring, InjectError, InputDecl, Payload, Signature};
use setl_core::{BoxedFactory, Delivery, Pipeline, Result, Stage};

/// The largest number of synthetic factories.
pub const MAX_NODES: usize = 1_000;

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

    /// One source and `count - 1` consumers of it.
    pub fn fan_out(count: usize) -> Self {
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

static SHAPE: RwLock<Option<Shape>> = RwLock::new(None);
static SIGNATURES: OnceLock<Mutex<HashMap<TypeId, &'static Signature>>> = OnceLock::new();

/// Makes `shape` the graph of the synthetic factories (for pipelines built afterwards).
pub fn install(shape: Shape) {
    assert!(shape.inputs.len() <= MAX_NODES, "at most {MAX_NODES} synthetic factories");
    *SHAPE.write().unwrap() = Some(shape);
    SIGNATURES.get_or_init(Default::default).lock().unwrap().clear();
}

fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

/// CPU work proportional to `units`, that the optimizer cannot remove.
pub fn spin(units: u64) -> u64 {
    let mut acc = units;
    for i in 0..units * 64 {
        acc = std::hint::black_box(acc.rotate_left(5) ^ i);
    }
    acc
}

/// The state of a synthetic factory; not generic, so its code exists once.
pub struct NodeState {
    index: usize,
    inputs: Vec<Delivery<u64>>,
    work: u64,
    value: u64,
}

impl NodeState {
    #[inline(never)]
    fn new(index: usize) -> Self {
        let shape = SHAPE.read().unwrap();
        let shape = shape.as_ref().expect("install a shape first");
        NodeState { index, inputs: vec![Delivery::new(); shape.inputs[index].len()], work: shape.work[index], value: 0 }
    }

    #[inline(never)]
    fn signature(index: usize, type_id: TypeId, build: fn(Vec<InputDecl>) -> Signature) -> &'static Signature {
        let mut signatures = SIGNATURES.get_or_init(Default::default).lock().unwrap();
        signatures.entry(type_id).or_insert_with(|| {
            let shape = SHAPE.read().unwrap();
            let shape = shape.as_ref().expect("install a shape first");
            let inputs = shape.inputs[index]
                .iter()
                .map(|&input| {
                    InputDecl::__new::<u64>(leak(format!("n{input}")), None, leak(format!("n{input}")), false)
                })
                .collect();
            let mut signature = build(inputs);
            signature.name = leak(format!("Node{index}"));
            signature.output_id = leak(format!("n{index}"));
            Box::leak(Box::new(signature))
        })
    }

    #[inline(never)]
    fn inject(&mut self, slot: usize, value: Payload) -> std::result::Result<(), InjectError> {
        self.inputs[slot].__fill("input", value)
    }

    #[inline(never)]
    fn process(&mut self) {
        let inputs: u64 = self.inputs.iter().map(|input| *input.get()).fold(self.index as u64, u64::wrapping_add);
        self.value = inputs.wrapping_add(if self.work > 0 { spin(self.work) & 1 } else { 0 });
    }
}

/// Synthetic factory number `I`: a distinct type per `I` around a shared, non-generic state, so
/// that many of them compile in reasonable time.
pub struct Node<const I: usize>(NodeState);

impl<const I: usize> Default for Node<I> {
    fn default() -> Self {
        Node(NodeState::new(I))
    }
}

impl<const I: usize> FactoryWiring for Node<I> {
    const NAME: &'static str = "Node";

    fn signature() -> &'static Signature {
        NodeState::signature(I, TypeId::of::<Self>(), |inputs| {
            Signature::__new::<Self>(module_path!(), "", Vec::new(), inputs)
        })
    }

    fn __inject(&mut self, slot: usize, value: Payload) -> std::result::Result<(), InjectError> {
        self.0.inject(slot, value)
    }
}

impl<const I: usize> Factory for Node<I> {
    type Output = u64;

    fn process(&mut self) -> Result<()> {
        self.0.process();
        Ok(())
    }

    fn get(&self) -> u64 {
        self.0.value
    }
}

fn make<const I: usize>() -> BoxedFactory {
    BoxedFactory::new(Node::<I>::default())
}

macro_rules! makers_1 {
    ($a:literal $b:literal $c:literal) => {
        [
            make::<{ $a * 1000 + $b * 100 + $c * 10 }>,
            make::<{ $a * 1000 + $b * 100 + $c * 10 + 1 }>,
            make::<{ $a * 1000 + $b * 100 + $c * 10 + 2 }>,
            make::<{ $a * 1000 + $b * 100 + $c * 10 + 3 }>,
            make::<{ $a * 1000 + $b * 100 + $c * 10 + 4 }>,
            make::<{ $a * 1000 + $b * 100 + $c * 10 + 5 }>,
            make::<{ $a * 1000 + $b * 100 + $c * 10 + 6 }>,
            make::<{ $a * 1000 + $b * 100 + $c * 10 + 7 }>,
            make::<{ $a * 1000 + $b * 100 + $c * 10 + 8 }>,
            make::<{ $a * 1000 + $b * 100 + $c * 10 + 9 }>,
        ]
    };
}
macro_rules! makers_10 {
    ($a:literal $b:literal) => {
        [
            makers_1!($a $b 0), makers_1!($a $b 1), makers_1!($a $b 2), makers_1!($a $b 3), makers_1!($a $b 4),
            makers_1!($a $b 5), makers_1!($a $b 6), makers_1!($a $b 7), makers_1!($a $b 8), makers_1!($a $b 9),
        ]
    };
}
macro_rules! makers_100 {
    ($a:literal) => {
        [
            makers_10!($a 0), makers_10!($a 1), makers_10!($a 2), makers_10!($a 3), makers_10!($a 4),
            makers_10!($a 5), makers_10!($a 6), makers_10!($a 7), makers_10!($a 8), makers_10!($a 9),
        ]
    };
}

type Maker = fn() -> BoxedFactory;

/// `MAKERS[b][c][d]` builds `Node<bcd>`.
static MAKERS: [[[Maker; 10]; 10]; 10] = makers_100!(0);

/// A new `Node<index>` for the installed shape.
pub fn node(index: usize) -> BoxedFactory {
    assert!(index < MAX_NODES);
    MAKERS[index / 100][index / 10 % 10][index % 10]()
}

/// A pipeline of the installed shape's nodes; `stage_of` places nodes in stages (default: one
/// stage holding all).
pub fn pipeline(setl: &setl_core::Setl, stage_of: Option<&[usize]>) -> Pipeline {
    let count = SHAPE.read().unwrap().as_ref().expect("install a shape first").inputs.len();
    let stages = stage_of.map_or(1, |stage_of| stage_of.iter().max().map_or(1, |max| max + 1));
    let mut built: Vec<Stage> = (0..stages).map(|_| Stage::new()).collect();
    for index in 0..count {
        let stage = stage_of.map_or(0, |stage_of| stage_of[index]);
        let taken = std::mem::take(&mut built[stage]);
        built[stage] = taken.add_boxed(node(index));
    }
    let mut pipeline = setl.new_pipeline();
    for stage in built {
        pipeline.add_stage(stage);
    }
    pipeline
}
