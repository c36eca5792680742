//! The matching rules: each input slot to at most one deliverable, one function per rule.
//!
//! A slot left out by its instance takes nothing. A slot that declares its producer takes that
//! producer's delivery of its type and id ([`Resolver::by_declared_producer`]); one that does
//! not takes the one delivery of its type and id open to it ([`Resolver::by_type_and_id`]). Then
//! the producer's consumer list is checked ([`Resolver::check_consumer_list`]), and the edge
//! recorded with SETL's stage rule ([`Resolver::record_edge`]).

use std::any::TypeId;
use std::sync::OnceLock;

use foldhash::HashSet;

use crate::delivery_key::DeliveryKey;
use crate::error::ValidationError;
use crate::factory::{FactoryRef, InputDecl};

use super::deliverables::{Deliverable, Grouped};
use super::{ExternalDecl, FactoryDecl, SlotSource, Source};

/// Everything the matching reads.
pub(super) struct Resolver<'a> {
    factories: &'a [FactoryDecl<'a>],
    externals: &'a [ExternalDecl<'a>],
    deliverables: &'a [Deliverable<'a>],
    by_type_and_id: &'a Grouped<DeliveryKey>,
    /// Only messages need these, so they are built on the first error that does.
    by_type: OnceLock<Grouped<TypeId>>,
    factory_types: OnceLock<HashSet<TypeId>>,
    /// SETL's stage-barrier mode: a producer must be in an earlier stage.
    barrier: bool,
}

/// The consumer a slot belongs to, as the rules need it.
struct Consumer<'a> {
    index: usize,
    decl: &'a FactoryDecl<'a>,
    reference: FactoryRef,
    /// Where this consumer's edges start in the list of all edges.
    first_edge: usize,
}

/// The edges and problems found so far, in declaration order.
#[derive(Default)]
struct Found {
    /// (producer, consumer), once per distinct producer of each consumer.
    edges: Vec<(usize, usize)>,
    errors: Vec<ValidationError>,
}

impl<'a> Resolver<'a> {
    pub(super) fn new(
        factories: &'a [FactoryDecl<'a>],
        externals: &'a [ExternalDecl<'a>],
        deliverables: &'a [Deliverable<'a>],
        by_type_and_id: &'a Grouped<DeliveryKey>,
        barrier: bool,
    ) -> Self {
        Resolver {
            factories,
            externals,
            deliverables,
            by_type_and_id,
            by_type: OnceLock::new(),
            factory_types: OnceLock::new(),
            barrier,
        }
    }

    /// Matches every input slot of every factory: the slots' sources in slot order, the edges,
    /// and the problems.
    pub(super) fn resolve_all(&self) -> (Vec<SlotSource>, Vec<(usize, usize)>, Vec<ValidationError>) {
        let slots = self.factories.iter().map(|factory| factory.signature.inputs.len()).sum();
        let mut sources = Vec::with_capacity(slots);
        // Most consumers have one producer; more edges grow the list.
        let mut found = Found { edges: Vec::with_capacity(self.factories.len()), errors: Vec::new() };
        for (index, decl) in self.factories.iter().enumerate() {
            let consumer = Consumer {
                index,
                decl,
                reference: FactoryRef::from_signature(decl.signature),
                first_edge: found.edges.len(),
            };
            for input in &decl.signature.inputs {
                sources.push(SlotSource::new(self.resolve_input(&consumer, input, &mut found)));
            }
        }
        (sources, found.edges, found.errors)
    }

    /// Matches one input slot, recording its edge and its problems in `found`.
    fn resolve_input(&self, consumer: &Consumer<'_>, input: &InputDecl, found: &mut Found) -> Option<Source> {
        if input.left_out {
            return None;
        }
        let candidates = self.by_type_and_id.get(&input.key.key());
        let chosen = match input.producer {
            Some(producer) => self.by_declared_producer(consumer, input, producer, candidates, found),
            None => self.by_type_and_id(consumer, input, candidates, found),
        };
        if !self.check_consumer_list(consumer, input, chosen, candidates, found) {
            return None;
        }
        let source = chosen.map(|number| self.deliverables[number].source);
        if let Some(Source::Factory(producer)) = source {
            self.record_edge(consumer, input, producer, found);
        }
        source
    }

    /// The rule for a slot that names its producer: that producer's delivery of the slot's type
    /// and id. Absent, it is an error unless the slot is optional, with the deliveries that come
    /// close as "did you mean".
    fn by_declared_producer(
        &self,
        consumer: &Consumer<'_>,
        input: &InputDecl,
        producer: FactoryRef,
        candidates: &[usize],
        found: &mut Found,
    ) -> Option<usize> {
        let made_by_producer = |number: &usize| match self.deliverables[*number].source {
            Source::Factory(index) => self.factories[index].signature.factory.id() == producer.type_id(),
            Source::External(_) => false,
        };
        // Instances of one type have distinct output ids, so at most one matches.
        let chosen = candidates.iter().copied().find(made_by_producer);
        if chosen.is_some() || input.optional {
            // An optional input whose producer is absent simply stays empty.
            return chosen;
        }
        let signature = consumer.decl.signature;
        if !self.factory_types().contains(&producer.type_id()) {
            found.errors.push(ValidationError::ProducerNotInPipeline {
                factory: signature.name.to_string(),
                field: input.field.to_owned(),
                payload: input.payload.name(),
                producer: producer.name().to_owned(),
            });
            return None;
        }
        // Same producer with another id, or same type and id from other producers.
        let mut near: Vec<String> = self
            .by_type()
            .get(&input.payload.id())
            .iter()
            .filter(|number| made_by_producer(number))
            .map(|&number| self.describe_with_id(number))
            .collect();
        near.extend(candidates.iter().map(|&number| self.describe_with_id(number)));
        found.errors.push(ValidationError::MissingInput {
            factory: signature.name.to_string(),
            field: input.field.to_owned(),
            payload: input.payload.name(),
            id: input.id.to_string(),
            producer: Some(producer.name().to_owned()),
            candidates: near,
        });
        None
    }

    /// The rule for a slot that names no producer: the one delivery of its type and id open to
    /// the consumer, never the consumer's own output. Among several, SETL's rule picks the one
    /// that names this consumer in its consumer list; otherwise they are ambiguous.
    fn by_type_and_id(
        &self,
        consumer: &Consumer<'_>,
        input: &InputDecl,
        candidates: &[usize],
        found: &mut Found,
    ) -> Option<usize> {
        let own = Source::Factory(consumer.index);
        // The common case, decided without building the lists below: validation of a pipeline
        // of one-input factories allocates nothing per input.
        if let [only] = *candidates {
            if self.deliverables[only].source != own && self.deliverables[only].allows(&consumer.reference) {
                return Some(only);
            }
        }
        let open: Vec<usize> =
            candidates.iter().copied().filter(|&number| self.deliverables[number].source != own).collect();
        let allowed: Vec<usize> =
            open.iter().copied().filter(|&number| self.deliverables[number].allows(&consumer.reference)).collect();
        match allowed.as_slice() {
            [one] => Some(*one),
            [] => {
                // Something that matches but is reserved for other consumers is reported by the
                // consumer-list check.
                if open.is_empty() && !input.optional {
                    found.errors.push(self.missing_input(consumer.index, input));
                }
                None
            }
            several => {
                let named: Vec<usize> = several
                    .iter()
                    .copied()
                    .filter(|&number| self.deliverables[number].consumers.contains(&consumer.reference))
                    .collect();
                if let [one] = named.as_slice() {
                    return Some(*one);
                }
                found.errors.push(ValidationError::AmbiguousInput {
                    factory: consumer.decl.signature.name.to_string(),
                    field: input.field.to_owned(),
                    payload: input.payload.name(),
                    id: input.id.to_string(),
                    producers: several.iter().map(|&number| self.describe(self.deliverables[number].source)).collect(),
                });
                None
            }
        }
    }

    /// The consumer-list rule, for declared and undeclared producers alike: the chosen delivery
    /// (or, for a required slot that names no producer and found none, one reserved for others)
    /// must allow the consumer. Returns whether the slot may take its choice.
    fn check_consumer_list(
        &self,
        consumer: &Consumer<'_>,
        input: &InputDecl,
        chosen: Option<usize>,
        candidates: &[usize],
        found: &mut Found,
    ) -> bool {
        let allows = |number: &usize| self.deliverables[*number].allows(&consumer.reference);
        let restricted = match chosen {
            Some(number) => Some(number).filter(|number| !allows(number)),
            None if input.producer.is_none() && !input.optional => {
                candidates.iter().copied().find(|number| !allows(number))
            }
            None => None,
        };
        let Some(number) = restricted else { return true };
        let deliverable = &self.deliverables[number];
        found.errors.push(ValidationError::ConsumerNotAllowed {
            factory: consumer.decl.signature.name.to_string(),
            field: input.field.to_owned(),
            payload: input.payload.name(),
            id: input.id.to_string(),
            producer: self.describe(deliverable.source),
            allowed: deliverable.consumers.iter().map(|allowed| format!("`{}`", allowed.name())).collect(),
        });
        false
    }

    /// Records the edge from `producer` (once per distinct producer of the consumer), checking
    /// SETL's stage rule in barrier mode.
    fn record_edge(&self, consumer: &Consumer<'_>, input: &InputDecl, producer: usize, found: &mut Found) {
        let producer_decl = &self.factories[producer];
        if self.barrier && producer_decl.stage >= consumer.decl.stage {
            found.errors.push(ValidationError::ProducerNotInEarlierStage {
                factory: consumer.decl.signature.name.to_string(),
                field: input.field.to_owned(),
                producer: producer_decl.signature.name.to_string(),
                producer_stage: producer_decl.stage,
                consumer_stage: consumer.decl.stage,
            });
        }
        // A consumer has few inputs: a scan of its own edges finds a repeat.
        if !found.edges[consumer.first_edge..].iter().any(|&(known, _)| known == producer) {
            found.edges.push((producer, consumer.index));
        }
    }

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

    /// A required input that nothing may deliver, with no producer declared; "did you mean"
    /// lists the deliveries of its type under other ids, except the consumer's own output, and
    /// pipeline inputs under its id but of another type.
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
}
