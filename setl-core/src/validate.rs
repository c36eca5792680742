//! Resolution: matching every input slot to exactly one deliverable, once, before anything runs.
//!
//! Matching follows SETL's dispatcher (payload type, delivery id, producer, consumer list) with
//! its known defects fixed: the declared producer is always checked, two candidates without a
//! declared producer are reported as ambiguous (naming both), cycles are found and printed as a
//! path, and every problem is reported at once. Cost: O(factories + deliveries), hash lookups
//! only.

use std::any::TypeId;
use std::collections::hash_map::Entry;
use std::hash::Hash;
use std::ops::Range;
use std::sync::OnceLock;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use rayon::prelude::*;

use crate::delivery_key::DeliveryKey;
use crate::factory::{FactoryRef, InputDecl, Signature, TypeInfo};
use crate::prefetch::prefetch_value;

/// One problem found while resolving a pipeline. Each names the factory, field, payload type and
/// delivery id involved, and says what would fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// Nothing in the pipeline delivers what a non-optional input needs.
    #[error("factory `{factory}`, field `{field}`: no delivery of `{payload}`{} from {}; {}",
        id_phrase(.id), producer_phrase(.producer.as_deref()), missing_fix(.payload, .id, .producer.as_deref(), .candidates))]
    MissingInput {
        /// The consuming factory.
        factory: String,
        /// The `Delivery` field.
        field: String,
        /// The payload type.
        payload: String,
        /// The delivery id asked for (`""` = none).
        id: String,
        /// The declared producer, if any.
        producer: Option<String>,
        /// Deliveries that come close: same type with another id, or same id from another producer.
        candidates: Vec<String>,
    },
    /// Several deliveries match an input and nothing says which one to take.
    #[error("factory `{factory}`, field `{field}`: ambiguous input: `{payload}`{} is delivered by {}; fix: name one with `#[delivery(producer = ..)]`, or give the outputs distinct ids",
        id_phrase(.id), list(.producers))]
    AmbiguousInput {
        /// The consuming factory.
        factory: String,
        /// The `Delivery` field.
        field: String,
        /// The payload type.
        payload: String,
        /// The delivery id.
        id: String,
        /// Every matching producer (`external input` for a pipeline input).
        producers: Vec<String>,
    },
    /// The declared producer is not part of the pipeline.
    #[error("factory `{factory}`, field `{field}`: producer `{producer}` of `{payload}` is not in the pipeline; fix: add it with `add_stage_from_type::<{producer}>()` or `add_factory(..)`")]
    ProducerNotInPipeline {
        /// The consuming factory.
        factory: String,
        /// The `Delivery` field.
        field: String,
        /// The payload type.
        payload: String,
        /// The declared producer.
        producer: String,
    },
    /// The matching delivery is restricted to other consumers.
    #[error("factory `{factory}`, field `{field}`: {producer} delivers `{payload}`{} only to {}; fix: add `{factory}` to its consumers", id_phrase(.id), list(.allowed))]
    ConsumerNotAllowed {
        /// The consuming factory.
        factory: String,
        /// The `Delivery` field.
        field: String,
        /// The payload type.
        payload: String,
        /// The delivery id.
        id: String,
        /// The producer (`the external input` for a pipeline input).
        producer: String,
        /// The consumers it is restricted to.
        allowed: Vec<String>,
    },
    /// The deliveries form a cycle, so no factory of it could ever start.
    #[error("cycle: {}; fix: remove one of these deliveries", .path.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(" -> "))]
    Cycle {
        /// The factories on the cycle, the first repeated at the end.
        path: Vec<String>,
    },
    /// The same factory type was added twice with the same output id, so its output would be
    /// ambiguous.
    #[error("factory `{factory}` is added twice{} (stages {first_stage} and {second_stage}), which makes its output ambiguous; fix: add it once (its output reaches consumers in every stage), or give each instance its own id with `.with_id(..)`", id_phrase(.id))]
    DuplicateFactory {
        /// The factory.
        factory: String,
        /// The output id both instances deliver under (`""` = none).
        id: String,
        /// The stage of its first instance.
        first_stage: usize,
        /// The stage of its second instance.
        second_stage: usize,
    },
    /// Two pipeline inputs have the same type and id.
    #[error("two external inputs of `{payload}`{}; fix: give each a distinct id with `.with_id(..)`", id_phrase(.id))]
    DuplicateInput {
        /// The payload type.
        payload: String,
        /// The delivery id.
        id: String,
    },
    /// `with_input_id` or `without_input` named a field that is not an input of the factory.
    #[error("factory `{factory}`: `{method}(\"{field}\"{})` names no input; fix: use one of {}",
        if *.method == "with_input_id" { ", .." } else { "" }, list(.inputs))]
    UnknownInput {
        /// The factory.
        factory: String,
        /// The `BoxedFactory` method that named it: `with_input_id` or `without_input`.
        method: &'static str,
        /// The field asked for.
        field: String,
        /// The factory's inputs.
        inputs: Vec<String>,
    },
    /// `without_input` left out an input the factory cannot run without.
    #[error("factory `{factory}`, field `{field}`: `without_input(\"{field}\")` leaves out an input that is not optional; fix: declare it `#[delivery(.., optional)]` and read it with `try_get()`, or keep it wired")]
    RequiredInputLeftOut {
        /// The factory.
        factory: String,
        /// The input left out.
        field: String,
    },
    /// In stage-barrier mode, a producer must run in an earlier stage than its consumer.
    #[error("factory `{factory}`, field `{field}`: producer `{producer}` is in stage {producer_stage}, not before stage {consumer_stage}; stage-barrier mode runs stages in order, so move `{producer}` to an earlier stage or use dataflow mode")]
    ProducerNotInEarlierStage {
        /// The consuming factory.
        factory: String,
        /// The `Delivery` field.
        field: String,
        /// The producer.
        producer: String,
        /// The producer's stage.
        producer_stage: usize,
        /// The consumer's stage.
        consumer_stage: usize,
    },
}

fn id_phrase(id: &str) -> String {
    if id.is_empty() {
        String::new()
    } else {
        format!(" with id \"{id}\"")
    }
}

fn producer_phrase(producer: Option<&str>) -> String {
    match producer {
        Some(producer) => format!("`{producer}`"),
        None => "any factory or external input".to_owned(),
    }
}

fn list(items: &[String]) -> String {
    match items {
        [] => "nobody".to_owned(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

fn missing_fix(payload: &str, id: &str, producer: Option<&str>, candidates: &[String]) -> String {
    if !candidates.is_empty() {
        return format!("did you mean {}?", list(candidates));
    }
    let with_id = if id.is_empty() { String::new() } else { format!(".with_id(\"{id}\")") };
    match producer {
        Some(producer) => format!("fix: make `{producer}` deliver it, or drop `producer = {producer}`"),
        None => format!("fix: add a factory whose Output is `{payload}`, or call `pipeline.set_input(value){with_id}`"),
    }
}

/// Where an input slot's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// The output of the factory at this index.
    Factory(usize),
    /// The pipeline input at this index.
    External(usize),
}

/// An input slot's [`Source`] in four bytes: the plan holds one per input slot of every
/// factory, so a pipeline of 10,000 three-input factories keeps 120 KB instead of 480 KB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotSource(u32);

impl SlotSource {
    /// No source: an optional input nothing delivers, or one that did not resolve.
    const NONE: SlotSource = SlotSource(u32::MAX);
    /// Set on a pipeline input's index.
    const EXTERNAL: u32 = 1 << 31;

    fn new(source: Option<Source>) -> Self {
        // A pipeline holds far fewer than 2^31 factories or inputs.
        let index = |index: usize| u32::try_from(index).ok().filter(|&index| index < Self::EXTERNAL);
        match source {
            None => Self::NONE,
            Some(Source::Factory(factory)) => SlotSource(index(factory).expect("fewer than 2^31 factories")),
            Some(Source::External(input)) => {
                SlotSource(index(input).expect("fewer than 2^31 pipeline inputs") | Self::EXTERNAL)
            }
        }
    }

    /// The source, if the slot has one.
    pub(crate) fn get(self) -> Option<Source> {
        match self.0 {
            u32::MAX => None,
            packed if packed & Self::EXTERNAL != 0 => Some(Source::External((packed & !Self::EXTERNAL) as usize)),
            factory => Some(Source::Factory(factory as usize)),
        }
    }
}

/// A pipeline input, as the resolver sees it.
pub(crate) struct ExternalDecl<'a> {
    pub(crate) payload: TypeInfo,
    pub(crate) id: &'a str,
    pub(crate) consumers: &'a [FactoryRef],
}

/// A factory, as the resolver sees it.
pub(crate) struct FactoryDecl<'a> {
    pub(crate) signature: &'a Signature,
    pub(crate) stage: usize,
    /// Fields given to `with_input_id` that are not inputs.
    pub(crate) unknown_inputs: &'a [(&'static str, Box<str>)],
}

/// The resolved graph: everything the scheduler needs, as indices.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// Per factory, per input slot: where its value comes from (`None`: optional and absent).
    pub(crate) sources: Lists<SlotSource>,
    /// Per factory: the distinct factories that consume its output, in declaration order.
    pub(crate) dependents: Lists<usize>,
    /// Per factory: how many distinct factories it waits for.
    pub(crate) producer_count: Vec<usize>,
    /// Per factory: how many input slots take its output.
    pub(crate) output_takers: Vec<usize>,
    /// Per pipeline input: how many input slots take it.
    pub(crate) external_takers: Vec<usize>,
    /// Per factory: the number of factories on the longest path from it to a sink, itself
    /// included. The scheduler starts the ready factory with the highest value first.
    pub(crate) priority: Vec<u32>,
    /// The factories in one valid execution order.
    pub(crate) topological_order: Vec<usize>,
}

/// One list per factory, all in one flat array, so a plan of any size is a handful of
/// allocations.
#[derive(Debug)]
pub(crate) struct Lists<T> {
    /// List `i` is `items[offsets[i]..offsets[i + 1]]`.
    offsets: Vec<usize>,
    items: Vec<T>,
}

impl<T> Default for Lists<T> {
    fn default() -> Self {
        Lists { offsets: vec![0], items: Vec::new() }
    }
}

impl<T> Lists<T> {
    /// The lists `items[offsets[i]..offsets[i + 1]]`.
    fn from_offsets(offsets: Vec<usize>, items: Vec<T>) -> Self {
        debug_assert_eq!(offsets.last(), Some(&items.len()), "the offsets do not cover the items");
        Lists { offsets, items }
    }

    /// List `index`.
    pub(crate) fn get(&self, index: usize) -> &[T] {
        &self.items[self.offsets[index]..self.offsets[index + 1]]
    }

    /// Every list, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[T]> + '_ {
        self.offsets.windows(2).map(|range| &self.items[range[0]..range[1]])
    }
}

impl Lists<usize> {
    /// `lists` lists from `(list, item)` pairs, each list keeping the pairs' order.
    fn from_pairs<'p>(lists: usize, pairs: impl Iterator<Item = &'p (usize, usize)> + Clone) -> Self {
        // Counted one place further on, so that filling moves each list's start to its end,
        // which is the next list's start: no second table of positions.
        let mut offsets = vec![0; lists + 2];
        for &(list, _) in pairs.clone() {
            offsets[list + 2] += 1;
        }
        for list in 2..lists + 2 {
            offsets[list] += offsets[list - 1];
        }
        let mut items = vec![0; offsets[lists + 1]];
        for &(list, item) in pairs {
            items[offsets[list + 1]] = item;
            offsets[list + 1] += 1;
        }
        offsets.pop();
        Lists { offsets, items }
    }
}

/// A deliverable: a value some slot may take.
struct Deliverable<'a> {
    source: Source,
    /// Its payload type and id; `None` for a pipeline input no factory declares an input for.
    key: Option<DeliveryKey>,
    consumers: &'a [FactoryRef],
}

/// Deliverable numbers grouped by a key, each group in declaration order, all in one flat array:
/// one insert per deliverable and no allocation per key.
struct Grouped<K> {
    group_of_key: GroupOf<K>,
    groups: Lists<usize>,
}

/// Where a key's group number is found.
enum GroupOf<K> {
    /// At `groups[key - base]` (`NO_GROUP` where none): for keys of a narrow range, so that
    /// looking up neighbouring keys reads neighbouring memory. Delivery keys are numbered in the
    /// order signatures are built, so those of one pipeline usually span little more than their
    /// count.
    Dense {
        base: u32,
        groups: Vec<u32>,
    },
    Hashed(HashMap<K, u32>),
}

const NO_GROUP: u32 = u32::MAX;

/// A key deliverables are grouped by.
trait GroupKey: Hash + Eq + Copy {
    /// The key as a number, when keys are numbered densely.
    fn dense(&self) -> Option<u32>;
}

impl GroupKey for DeliveryKey {
    fn dense(&self) -> Option<u32> {
        Some(self.number())
    }
}

impl GroupKey for TypeId {
    fn dense(&self) -> Option<u32> {
        None
    }
}

impl<K: GroupKey> Grouped<K> {
    /// Groups deliverables `0..` by their keys; one without a key is in no group.
    fn new(keys: impl ExactSizeIterator<Item = Option<K>> + Clone) -> Self {
        let count = keys.len();
        let mut group_of_key = Self::index_for(keys.clone(), count);
        let mut groups = 0;
        let pairs: Vec<(usize, usize)> = keys
            .enumerate()
            .filter_map(|(number, key)| {
                let group = match &mut group_of_key {
                    GroupOf::Dense { base, groups: group_of } => {
                        &mut group_of[key?.dense()?.wrapping_sub(*base) as usize]
                    }
                    GroupOf::Hashed(map) => map.entry(key?).or_insert(NO_GROUP),
                };
                if *group == NO_GROUP {
                    // Groups are at most the deliverables, far fewer than 2^32.
                    *group = u32::try_from(groups).expect("fewer than 2^32 groups");
                    groups += 1;
                }
                Some((*group as usize, number))
            })
            .collect();
        let groups = Lists::from_pairs(groups, pairs.iter());
        Grouped { group_of_key, groups }
    }

    /// A dense table when `keys` span at most a few times their count, a hash map otherwise.
    fn index_for(keys: impl Iterator<Item = Option<K>>, count: usize) -> GroupOf<K> {
        let numbers = keys.flatten().map(|key| key.dense());
        let (mut low, mut high) = (u32::MAX, 0);
        for number in numbers {
            let Some(number) = number else { return GroupOf::Hashed(HashMap::with_capacity(count)) };
            low = low.min(number);
            high = high.max(number);
        }
        if low > high {
            return GroupOf::Dense { base: 0, groups: Vec::new() };
        }
        let span = (high - low) as usize + 1;
        if span <= 4 * count + 64 {
            GroupOf::Dense { base: low, groups: vec![NO_GROUP; span] }
        } else {
            GroupOf::Hashed(HashMap::with_capacity(count))
        }
    }

    /// The deliverables under `key`, in declaration order.
    fn get(&self, key: &K) -> &[usize] {
        let group = match &self.group_of_key {
            GroupOf::Dense { base, groups } => {
                key.dense().and_then(|number| groups.get(number.wrapping_sub(*base) as usize)).copied()
            }
            GroupOf::Hashed(map) => map.get(key).copied(),
        };
        match group {
            Some(group) if group != NO_GROUP => self.groups.get(group as usize),
            _ => &[],
        }
    }
}

impl Deliverable<'_> {
    fn allows(&self, consumer: &FactoryRef) -> bool {
        self.consumers.is_empty() || self.consumers.contains(consumer)
    }
}

/// How many factories ahead the resolver asks for signatures to be loaded.
const PREFETCH_DISTANCE: usize = 8;

/// Resolves every input slot. `barrier` adds SETL's stage-order rule; a large pipeline is
/// resolved in parts on `pool`.
pub(crate) fn resolve<'a>(
    factories: &'a [FactoryDecl<'a>],
    externals: &'a [ExternalDecl<'a>],
    barrier: bool,
    pool: Option<&rayon::ThreadPool>,
) -> Result<Plan, Vec<ValidationError>> {
    // Problems of single factories, with the factory's index: reported in declaration order.
    let mut factory_errors: Vec<(usize, ValidationError)> = Vec::new();
    let mut deliverables = Vec::with_capacity(factories.len() + externals.len());
    for (index, factory) in factories.iter().enumerate() {
        let signature = factory.signature;
        for (method, field) in factory.unknown_inputs {
            factory_errors.push((
                index,
                ValidationError::UnknownInput {
                    factory: signature.name.to_string(),
                    method,
                    field: field.to_string(),
                    inputs: signature.inputs.iter().map(|input| format!("`{}`", input.field)).collect(),
                },
            ));
        }
        for input in signature.inputs.iter().filter(|input| input.left_out && !input.optional) {
            factory_errors.push((
                index,
                ValidationError::RequiredInputLeftOut {
                    factory: signature.name.to_string(),
                    field: input.field.to_owned(),
                },
            ));
        }
    }
    // Where each factory's input slots start in the plan's flat list of sources, read while the
    // signatures are at hand, so that each part of the matching knows its share in advance.
    let mut slot_offsets = Vec::with_capacity(factories.len() + 1);
    slot_offsets.push(0);
    deliverables.extend(factories.iter().enumerate().map(|(index, factory)| {
        if let Some(ahead) = factories.get(index + PREFETCH_DISTANCE) {
            prefetch_value(ahead.signature, 256);
        }
        slot_offsets.push(slot_offsets[index] + factory.signature.inputs.len());
        Deliverable {
            source: Source::Factory(index),
            key: Some(factory.signature.output_key.key()),
            consumers: &factory.signature.consumers,
        }
    }));
    let mut external_keys: HashSet<(TypeId, &str)> = HashSet::with_capacity(externals.len());
    // Reported after the factories' problems.
    let mut input_errors = Vec::new();
    for (index, external) in externals.iter().enumerate() {
        if !external_keys.insert((external.payload.id(), external.id)) {
            input_errors
                .push(ValidationError::DuplicateInput { payload: external.payload.name(), id: external.id.to_owned() });
            continue;
        }
        deliverables.push(Deliverable {
            source: Source::External(index),
            key: DeliveryKey::declared(external.payload.id(), external.id),
            consumers: external.consumers,
        });
    }
    let mut by_type_and_id = Grouped::new(deliverables.iter().map(|deliverable| deliverable.key));
    // A factory is known by its type and output id, so two instances of one type with one id
    // deliver the same type under the same id: they meet in one group, found without a map of
    // their own. The later one is reported and left out.
    let duplicates = duplicate_factories(&by_type_and_id, &deliverables, factories);
    if !duplicates.is_empty() {
        let mut reported = vec![false; factories.len()];
        for &(second, first) in &duplicates {
            reported[second] = true;
            factory_errors.push((
                second,
                ValidationError::DuplicateFactory {
                    factory: factories[second].signature.name.to_string(),
                    id: factories[second].signature.output_id.to_string(),
                    first_stage: factories[first].stage,
                    second_stage: factories[second].stage,
                },
            ));
        }
        deliverables.retain(|deliverable| !matches!(deliverable.source, Source::Factory(index) if reported[index]));
        by_type_and_id = Grouped::new(deliverables.iter().map(|deliverable| deliverable.key));
    }
    // A stable sort: a factory's unknown inputs stay before its duplicate.
    factory_errors.sort_by_key(|(index, _)| *index);
    let mut errors: Vec<ValidationError> = factory_errors.into_iter().map(|(_, error)| error).collect();
    errors.append(&mut input_errors);

    let count = factories.len();
    let resolver = Resolver {
        factories,
        externals,
        deliverables: &deliverables,
        by_type_and_id: &by_type_and_id,
        slot_offsets: &slot_offsets,
        by_type: OnceLock::new(),
        factory_types: OnceLock::new(),
        barrier,
    };
    // A large pipeline is resolved in parts on the pool, one per thread, each filling its share
    // of the plan's slots; the parts' edges and errors are joined in declaration order, so the
    // plan and the order of the errors do not depend on it.
    let mut sources: Vec<SlotSource> = vec![SlotSource::NONE; slot_offsets[count]];
    let parts: Vec<Resolved> = match pool.filter(|pool| count >= PARALLEL_MIN && pool.current_num_threads() > 1) {
        Some(pool) => {
            let threads = pool.current_num_threads();
            let mut shares: Vec<(Range<usize>, &mut [SlotSource])> = Vec::with_capacity(threads);
            let mut rest = sources.as_mut_slice();
            for part in 0..threads {
                let range = count * part / threads..count * (part + 1) / threads;
                let (share, after) = rest.split_at_mut(slot_offsets[range.end] - slot_offsets[range.start]);
                shares.push((range, share));
                rest = after;
            }
            pool.install(|| shares.into_par_iter().map(|(range, share)| resolver.resolve_range(range, share)).collect())
        }
        None => vec![resolver.resolve_range(0..count, &mut sources)],
    };

    let mut plan = Plan {
        sources: Lists::default(),
        dependents: Lists::default(),
        producer_count: vec![0; count],
        output_takers: vec![0; count],
        external_takers: vec![0; externals.len()],
        priority: vec![0; count],
        topological_order: Vec::with_capacity(count),
    };
    for source in &sources {
        match source.get() {
            Some(Source::Factory(producer)) => plan.output_takers[producer] += 1,
            Some(Source::External(input)) => plan.external_takers[input] += 1,
            None => {}
        }
    }
    let edges = parts.iter().flat_map(|part| &part.edges);
    for &(_, consumer) in edges.clone() {
        plan.producer_count[consumer] += 1;
    }
    plan.sources = Lists::from_offsets(slot_offsets, sources);
    plan.dependents = Lists::from_pairs(count, edges);
    for mut part in parts {
        errors.append(&mut part.errors);
    }

    if let Err(path) = order(&mut plan, factories) {
        errors.push(ValidationError::Cycle { path });
    }
    if errors.is_empty() {
        Ok(plan)
    } else {
        Err(errors)
    }
}

/// Pipelines with at least this many factories are resolved on the pool, in parallel.
const PARALLEL_MIN: usize = 4096;

/// What resolving a range of consumers found, in declaration order.
struct Resolved {
    /// (producer, consumer), once per distinct producer of each consumer.
    edges: Vec<(usize, usize)>,
    errors: Vec<ValidationError>,
}

/// Everything the matching of input slots reads; shared by the threads that resolve parts of a
/// large pipeline.
struct Resolver<'a> {
    factories: &'a [FactoryDecl<'a>],
    externals: &'a [ExternalDecl<'a>],
    deliverables: &'a [Deliverable<'a>],
    by_type_and_id: &'a Grouped<DeliveryKey>,
    /// Per factory: where its input slots start among all factories' (one more entry at the end).
    slot_offsets: &'a [usize],
    /// Only messages need these, so they are built on the first error that does.
    by_type: OnceLock<Grouped<TypeId>>,
    factory_types: OnceLock<HashSet<TypeId>>,
    barrier: bool,
}

impl Resolver<'_> {
    fn by_type(&self) -> &Grouped<TypeId> {
        self.by_type.get_or_init(|| {
            Grouped::new(self.deliverables.iter().map(|deliverable| Some(self.payload(deliverable.source))))
        })
    }

    fn factory_types(&self) -> &HashSet<TypeId> {
        self.factory_types.get_or_init(|| self.factories.iter().map(|factory| factory.signature.factory.id()).collect())
    }

    fn payload(&self, source: Source) -> TypeId {
        match source {
            Source::Factory(index) => self.factories[index].signature.output.id(),
            Source::External(index) => self.externals[index].payload.id(),
        }
    }

    fn describe(&self, source: Source) -> String {
        match source {
            Source::Factory(index) => format!("`{}`", self.factories[index].signature.name),
            Source::External(_) => "the external input".to_owned(),
        }
    }

    /// A non-optional input that nothing may deliver, with no producer declared; "did you mean"
    /// lists the deliveries of its type under other ids, except the consumer's own output (a
    /// factory never feeds itself through an input that names no producer).
    fn missing_input(&self, consumer_index: usize, input: &InputDecl) -> ValidationError {
        let signature = self.factories[consumer_index].signature;
        let near = self
            .by_type()
            .get(&input.payload.id())
            .iter()
            .filter(|&&number| self.deliverables[number].source != Source::Factory(consumer_index))
            .map(|&number| self.describe_with_id(number))
            .chain(self.mistyped_externals(input))
            .collect();
        ValidationError::MissingInput {
            factory: signature.name.to_string(),
            field: input.field.to_owned(),
            payload: input.payload.name(),
            id: input.id.to_string(),
            producer: None,
            candidates: near,
        }
    }

    /// Pipeline inputs under the input's id but of another type: `set_input(5)` is an `i32`,
    /// and an input of `i64` does not take it.
    fn mistyped_externals<'s>(&'s self, input: &'s InputDecl) -> impl Iterator<Item = String> + 's {
        self.externals
            .iter()
            .filter(move |external| external.id == input.id && external.payload.id() != input.payload.id())
            .map(move |external| {
                let id = if external.id.is_empty() { "no id".to_owned() } else { format!("id \"{}\"", external.id) };
                format!(
                    "the external input ({id}) of type `{}` (this input takes `{}`)",
                    external.payload.name(),
                    input.payload.name()
                )
            })
    }

    fn describe_with_id(&self, number: usize) -> String {
        let source = self.deliverables[number].source;
        let id = match source {
            Source::Factory(index) => &self.factories[index].signature.output_id,
            Source::External(index) => self.externals[index].id,
        };
        let source = self.describe(source);
        if id.is_empty() {
            format!("{source} (no id)")
        } else {
            format!("{source} (id \"{id}\")")
        }
    }

    /// Matches every input slot of the consumers in `range`.
    /// `sources` is the plan's share of their slots, filled in slot order.
    fn resolve_range(&self, range: Range<usize>, sources: &mut [SlotSource]) -> Resolved {
        debug_assert_eq!(sources.len(), self.slot_offsets[range.end] - self.slot_offsets[range.start]);
        // Most consumers have one producer; more edges grow the list.
        let mut out = Resolved { edges: Vec::with_capacity(range.len()), errors: Vec::new() };
        let mut slots = sources.iter_mut();
        let part = &self.factories[range.clone()];
        for (at, consumer_index) in range.enumerate() {
            // Signatures of a large pipeline no longer fit in cache: ask for the ones a few
            // steps ahead (the inputs of a signature fetched a few steps before).
            if let Some(ahead) = part.get(at + PREFETCH_DISTANCE) {
                prefetch_value(ahead.signature, 256);
            }
            if let Some(ahead) = part.get(at + PREFETCH_DISTANCE / 2) {
                prefetch_value(ahead.signature.inputs.as_slice(), 512);
            }
            let factory = &self.factories[consumer_index];
            let signature = factory.signature;
            let consumer = FactoryRef::from_signature(signature);
            let consumer_edges = out.edges.len();
            for (input, slot) in signature.inputs.iter().zip(&mut slots) {
                *slot = SlotSource::new(self.resolve_input(
                    factory,
                    consumer_index,
                    &consumer,
                    consumer_edges,
                    input,
                    &mut out,
                ));
            }
        }
        out
    }

    /// Matches one input slot of `factory` (number `consumer_index`), recording its edge (once
    /// per producer: the consumer's edges start at `consumer_edges`) and its problems in `out`.
    fn resolve_input(
        &self,
        factory: &FactoryDecl<'_>,
        consumer_index: usize,
        consumer: &FactoryRef,
        consumer_edges: usize,
        input: &InputDecl,
        out: &mut Resolved,
    ) -> Option<Source> {
        let signature = factory.signature;
        if input.left_out {
            return None;
        }
        let candidates = self.by_type_and_id.get(&input.key.key());
        // Names are only built for messages, so the valid path allocates nothing per input.
        let payload = || input.payload.name();
        let chosen: Option<usize> = if let Some(producer) = input.producer {
            let made_by_producer = |number: &usize| match self.deliverables[*number].source {
                Source::Factory(index) => self.factories[index].signature.factory.id() == producer.type_id(),
                Source::External(_) => false,
            };
            // Instances of one type have distinct output ids, so at most one matches.
            let found = candidates.iter().copied().find(made_by_producer);
            if found.is_none() && !self.factory_types().contains(&producer.type_id()) {
                if input.optional {
                    // An optional input whose producer is absent simply stays empty.
                    return None;
                }
                out.errors.push(ValidationError::ProducerNotInPipeline {
                    factory: signature.name.to_string(),
                    field: input.field.to_owned(),
                    payload: payload(),
                    producer: producer.name().to_owned(),
                });
                return None;
            }
            if found.is_none() && !input.optional {
                // Same producer with another id, or same type and id from other producers.
                let mut near: Vec<String> = self
                    .by_type()
                    .get(&input.payload.id())
                    .iter()
                    .filter(|number| made_by_producer(number))
                    .map(|&number| self.describe_with_id(number))
                    .collect();
                near.extend(candidates.iter().map(|&number| self.describe_with_id(number)));
                out.errors.push(ValidationError::MissingInput {
                    factory: signature.name.to_string(),
                    field: input.field.to_owned(),
                    payload: payload(),
                    id: input.id.to_string(),
                    producer: Some(producer.name().to_owned()),
                    candidates: near,
                });
            }
            found
        } else if let Some(only) = sole_open_candidate(candidates, self.deliverables, consumer_index, consumer) {
            // The common case, decided without allocating.
            Some(only)
        } else if candidates.is_empty() {
            if !input.optional {
                out.errors.push(self.missing_input(consumer_index, input));
            }
            None
        } else {
            // A factory never feeds itself through an input that names no producer.
            let candidates: Vec<usize> = candidates
                .iter()
                .copied()
                .filter(|&number| self.deliverables[number].source != Source::Factory(consumer_index))
                .collect();
            let candidates = candidates.as_slice();
            let allowed: Vec<usize> =
                candidates.iter().copied().filter(|&number| self.deliverables[number].allows(consumer)).collect();
            match allowed.as_slice() {
                [one] => Some(*one),
                [] => {
                    if candidates.is_empty() && !input.optional {
                        // Only this factory itself delivers it.
                        out.errors.push(self.missing_input(consumer_index, input));
                    }
                    // Otherwise something matches, but it is reserved for other consumers.
                    None
                }
                several => {
                    // SETL's rule: a delivery naming this consumer explicitly wins.
                    let named: Vec<usize> = several
                        .iter()
                        .copied()
                        .filter(|&number| self.deliverables[number].consumers.contains(consumer))
                        .collect();
                    if let [one] = named.as_slice() {
                        Some(*one)
                    } else {
                        out.errors.push(ValidationError::AmbiguousInput {
                            factory: signature.name.to_string(),
                            field: input.field.to_owned(),
                            payload: payload(),
                            id: input.id.to_string(),
                            producers: several
                                .iter()
                                .map(|&number| self.describe(self.deliverables[number].source))
                                .collect(),
                        });
                        None
                    }
                }
            }
        };
        // The consumer-list check, for declared and undeclared producers alike.
        let restricted = match chosen {
            Some(number) if !self.deliverables[number].allows(consumer) => Some(number),
            None if input.producer.is_none() && !candidates.is_empty() && !input.optional => {
                candidates.iter().copied().find(|&number| !self.deliverables[number].allows(consumer))
            }
            _ => None,
        };
        if let Some(number) = restricted {
            out.errors.push(ValidationError::ConsumerNotAllowed {
                factory: signature.name.to_string(),
                field: input.field.to_owned(),
                payload: input.payload.name(),
                id: input.id.to_string(),
                producer: self.describe(self.deliverables[number].source),
                allowed: self.deliverables[number].consumers.iter().map(|c| format!("`{}`", c.name())).collect(),
            });
            return None;
        }
        let source = chosen.map(|number| self.deliverables[number].source);
        match source {
            Some(Source::Factory(producer_index)) => {
                if self.barrier && self.factories[producer_index].stage >= factory.stage {
                    out.errors.push(ValidationError::ProducerNotInEarlierStage {
                        factory: signature.name.to_string(),
                        field: input.field.to_owned(),
                        producer: self.factories[producer_index].signature.name.to_string(),
                        producer_stage: self.factories[producer_index].stage,
                        consumer_stage: factory.stage,
                    });
                }
                // One edge per distinct producer; a consumer has few inputs.
                if !out.edges[consumer_edges..].iter().any(|&(producer, _)| producer == producer_index) {
                    out.edges.push((producer_index, consumer_index));
                }
            }
            Some(Source::External(_)) | None => {}
        }
        source
    }
}

/// Pairs (later, first) of factory instances with the same type and output id, in declaration
/// order of the later one.
fn duplicate_factories(
    by_type_and_id: &Grouped<DeliveryKey>,
    deliverables: &[Deliverable<'_>],
    factories: &[FactoryDecl<'_>],
) -> Vec<(usize, usize)> {
    let mut duplicates = Vec::new();
    for group in by_type_and_id.groups.iter().filter(|group| group.len() > 1) {
        let mut first_of_type: HashMap<TypeId, usize> = HashMap::new();
        for &number in group {
            let Source::Factory(index) = deliverables[number].source else { continue };
            match first_of_type.entry(factories[index].signature.factory.id()) {
                Entry::Occupied(first) => duplicates.push((index, *first.get())),
                Entry::Vacant(vacant) => {
                    vacant.insert(index);
                }
            }
        }
    }
    duplicates.sort_unstable();
    duplicates
}

/// The one deliverable among `candidates`, when there is exactly one and it may feed `consumer`.
fn sole_open_candidate(
    candidates: &[usize],
    deliverables: &[Deliverable<'_>],
    consumer_index: usize,
    consumer: &FactoryRef,
) -> Option<usize> {
    match *candidates {
        [only]
            if deliverables[only].source != Source::Factory(consumer_index) && deliverables[only].allows(consumer) =>
        {
            Some(only)
        }
        _ => None,
    }
}

/// Computes a topological order and each factory's priority, or finds a cycle.
fn order(plan: &mut Plan, factories: &[FactoryDecl<'_>]) -> Result<(), Vec<String>> {
    let count = plan.producer_count.len();
    let mut waiting = plan.producer_count.clone();
    let mut order: Vec<usize> = (0..count).filter(|&index| waiting[index] == 0).collect();
    let mut next = 0;
    while next < order.len() {
        let index = order[next];
        next += 1;
        for &dependent in plan.dependents.get(index) {
            waiting[dependent] -= 1;
            if waiting[dependent] == 0 {
                order.push(dependent);
            }
        }
    }
    if order.len() < count {
        return Err(find_cycle(plan, factories, &waiting));
    }
    for &index in order.iter().rev() {
        let longest_below = plan.dependents.get(index).iter().map(|&d| plan.priority[d]).max().unwrap_or(0);
        plan.priority[index] = longest_below + 1;
    }
    plan.topological_order = order;
    Ok(())
}

/// Walks producer edges among the factories that never became ready until one repeats.
fn find_cycle(plan: &Plan, factories: &[FactoryDecl<'_>], waiting: &[usize]) -> Vec<String> {
    let stuck = |index: usize| waiting[index] > 0;
    // Every stuck factory has a stuck producer, so this walk always finds a repeat.
    let start = (0..waiting.len()).find(|&index| stuck(index)).unwrap_or(0);
    let mut walk = vec![start];
    let mut position: HashMap<usize, usize> = HashMap::new();
    position.insert(start, 0);
    let mut current = start;
    loop {
        let producer = plan.sources.get(current).iter().find_map(|source| match source.get() {
            Some(Source::Factory(producer)) if stuck(producer) => Some(producer),
            _ => None,
        });
        let Some(producer) = producer else { break };
        if let Some(&first) = position.get(&producer) {
            // `walk` goes consumer -> producer; print producer -> consumer, closing the loop.
            let cycle = &walk[first..];
            let name = |index: &usize| factories[*index].signature.name.to_string();
            let mut path = vec![name(&cycle[0])];
            path.extend(cycle[1..].iter().rev().map(name));
            path.push(name(&cycle[0]));
            return path;
        }
        position.insert(producer, walk.len());
        walk.push(producer);
        current = producer;
    }
    vec![factories[start].signature.name.to_string()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Numbers as keys, dense like delivery keys.
    impl GroupKey for u32 {
        fn dense(&self) -> Option<u32> {
            Some(*self)
        }
    }

    fn groups_of<K: GroupKey>(grouped: &Grouped<K>, keys: &[K]) -> Vec<Vec<usize>> {
        keys.iter().map(|key| grouped.get(key).to_vec()).collect()
    }

    #[test]
    fn a_slot_source_packs_and_unpacks_every_kind() {
        for source in [
            None,
            Some(Source::Factory(0)),
            Some(Source::Factory(12_345)),
            Some(Source::External(0)),
            Some(Source::External(7)),
        ] {
            assert_eq!(SlotSource::new(source).get(), source);
        }
        assert_eq!(SlotSource::NONE.get(), None);
    }

    #[test]
    fn keys_of_a_narrow_range_are_indexed_and_others_hashed_with_the_same_groups() {
        // Deliverables 0..6 under these keys (none for number 3); then keys asked for.
        let narrow = [Some(7_u32), Some(5), Some(7), None, Some(6), Some(5)];
        let grouped = Grouped::new(narrow.iter().copied());
        assert!(matches!(grouped.group_of_key, GroupOf::Dense { base: 5, .. }));
        assert_eq!(
            groups_of(&grouped, &[5, 6, 7, 4, 8, 0, u32::MAX]),
            [vec![1, 5], vec![4], vec![0, 2], vec![], vec![], vec![], vec![]]
        );

        let wide = [Some(7_u32), Some(1_000_000), Some(7)];
        let grouped = Grouped::new(wide.iter().copied());
        assert!(matches!(grouped.group_of_key, GroupOf::Hashed(_)));
        assert_eq!(groups_of(&grouped, &[7, 1_000_000, 8]), [vec![0, 2], vec![1], vec![]]);

        let types = [Some(TypeId::of::<u8>()), Some(TypeId::of::<u16>()), Some(TypeId::of::<u8>())];
        let grouped = Grouped::new(types.iter().copied());
        assert!(matches!(grouped.group_of_key, GroupOf::Hashed(_)));
        assert_eq!(
            groups_of(&grouped, &[TypeId::of::<u8>(), TypeId::of::<u16>(), TypeId::of::<u32>()]),
            [vec![0, 2], vec![1], vec![]]
        );

        let grouped = Grouped::<u32>::new([None, None].into_iter());
        assert_eq!(groups_of(&grouped, &[0, 1]), [Vec::<usize>::new(), Vec::new()]);
    }
}
