//! The problems validation finds: one variant per kind, each naming the factory, field, payload
//! type and delivery id involved and saying what would fix it.

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
