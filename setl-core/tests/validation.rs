//! Each validation rule, with its exact message, and the pre-run checks of SETL and PySetl.

use setl_core::prelude::*;
use setl_core::{ErrorKind, ExecutionMode, ValidationError};

#[factory]
#[derive(Default)]
struct Numbers;
impl Factory for Numbers {
    type Output = Vec<i64>;
    fn get(&self) -> Vec<i64> {
        vec![1, 2, 3]
    }
}

#[factory]
#[derive(Default)]
struct MoreNumbers;
impl Factory for MoreNumbers {
    type Output = Vec<i64>;
    fn get(&self) -> Vec<i64> {
        vec![4, 5]
    }
}

/// Takes `Vec<i64>` from whoever delivers it.
#[factory]
#[derive(Default)]
struct Sum {
    #[delivery]
    numbers: Delivery<Vec<i64>>,
}
impl Factory for Sum {
    type Output = i64;
    fn get(&self) -> i64 {
        self.numbers.get().iter().sum()
    }
}

/// Takes `Vec<i64>` from `Numbers` only.
#[factory]
#[derive(Default)]
struct SumOfNumbers {
    #[delivery(producer = Numbers)]
    numbers: Delivery<Vec<i64>>,
}
impl Factory for SumOfNumbers {
    type Output = u64;
    fn get(&self) -> u64 {
        self.numbers.get().len() as u64
    }
}

#[factory]
#[derive(Default)]
struct NeedsOffset {
    #[delivery(id = "offset")]
    offset: Delivery<i64>,
}
impl Factory for NeedsOffset {
    type Output = String;
    fn get(&self) -> String {
        self.offset.get().to_string()
    }
}

/// Delivers the type it takes, as the issue's `Total` does: it is no candidate for its own input.
#[factory]
#[derive(Default)]
struct Scaled {
    #[delivery(id = "offset")]
    offset: Delivery<i64>,
}
impl Factory for Scaled {
    type Output = i64;
    fn get(&self) -> i64 {
        *self.offset.get() * 2
    }
}

#[factory(id = "secret", consumers(Auditor))]
#[derive(Default)]
struct Vault;
impl Factory for Vault {
    type Output = u32;
    fn get(&self) -> u32 {
        42
    }
}

#[factory]
#[derive(Default)]
struct Auditor {
    #[delivery(producer = Vault, id = "secret")]
    secret: Delivery<u32>,
}
impl Factory for Auditor {
    type Output = bool;
    fn get(&self) -> bool {
        *self.secret.get() == 42
    }
}

#[factory]
#[derive(Default)]
struct Thief {
    #[delivery(producer = Vault, id = "secret")]
    secret: Delivery<u32>,
}
impl Factory for Thief {
    type Output = f32;
    fn get(&self) -> f32 {
        0.0
    }
}

// A cycle: CycleA -> CycleB -> CycleC -> CycleA.
#[factory]
#[derive(Default)]
struct CycleA {
    #[delivery(producer = CycleC)]
    c: Delivery<u8>,
}
impl Factory for CycleA {
    type Output = u16;
    fn get(&self) -> u16 {
        1
    }
}
#[factory]
#[derive(Default)]
struct CycleB {
    #[delivery(producer = CycleA)]
    a: Delivery<u16>,
}
impl Factory for CycleB {
    type Output = i16;
    fn get(&self) -> i16 {
        1
    }
}
#[factory]
#[derive(Default)]
struct CycleC {
    #[delivery(producer = CycleB)]
    b: Delivery<i16>,
}
impl Factory for CycleC {
    type Output = u8;
    fn get(&self) -> u8 {
        1
    }
}

fn setl() -> Setl {
    Setl::builder().threads(2).build().unwrap()
}

fn problems(pipeline: &Pipeline) -> Vec<String> {
    let error = pipeline.validate().expect_err("the pipeline should not validate");
    error.validation_errors().expect("a validation error").iter().map(ToString::to_string).collect()
}

#[test]
fn a_missing_input_names_factory_field_type_and_the_fix() {
    let mut pipeline = setl().new_pipeline();
    pipeline.add_stage_from_type::<Sum>();
    assert_eq!(
        problems(&pipeline),
        ["factory `Sum`, field `numbers`: no delivery of `Vec<i64>` from any factory or external input; \
          fix: add a factory whose Output is `Vec<i64>`, or call `pipeline.set_input(value)`"]
    );
}

#[test]
fn a_missing_input_with_an_id_suggests_the_same_type_under_another_id() {
    let mut pipeline = setl().new_pipeline();
    pipeline.set_input(5_i64).with_id("ofset");
    pipeline.add_stage_from_type::<NeedsOffset>();
    assert_eq!(
        problems(&pipeline),
        ["factory `NeedsOffset`, field `offset`: no delivery of `i64` with id \"offset\" from any factory or \
          external input; did you mean the external input (id \"ofset\")?"]
    );
}

#[test]
fn a_factory_is_never_suggested_for_its_own_input() {
    let mut pipeline = setl().new_pipeline();
    pipeline.set_input(5_i64).with_id("ofset");
    pipeline.add_stage_from_type::<Scaled>();
    assert_eq!(
        problems(&pipeline),
        ["factory `Scaled`, field `offset`: no delivery of `i64` with id \"offset\" from any factory or \
          external input; did you mean the external input (id \"ofset\")?"]
    );
}

#[test]
fn an_external_input_of_another_type_under_the_id_is_pointed_out() {
    let mut pipeline = setl().new_pipeline();
    // An integer literal is an `i32`; `NeedsOffset` takes an `i64`.
    pipeline.set_input(5).with_id("offset");
    pipeline.add_stage_from_type::<NeedsOffset>();
    assert_eq!(
        problems(&pipeline),
        ["factory `NeedsOffset`, field `offset`: no delivery of `i64` with id \"offset\" from any factory or \
          external input; did you mean the external input (id \"offset\") of type `i32` (this input takes `i64`)?"]
    );
}

#[test]
fn a_missing_external_input_with_an_id_says_how_to_set_it() {
    let mut pipeline = setl().new_pipeline();
    pipeline.add_stage_from_type::<NeedsOffset>();
    assert_eq!(
        problems(&pipeline),
        ["factory `NeedsOffset`, field `offset`: no delivery of `i64` with id \"offset\" from any factory or \
          external input; fix: add a factory whose Output is `i64`, or call \
          `pipeline.set_input(value).with_id(\"offset\")`"]
    );
}

#[test]
fn two_producers_of_one_type_without_a_declared_producer_are_ambiguous() {
    let mut pipeline = setl().new_pipeline();
    pipeline.add_stage_from_type::<Numbers>().add_stage_from_type::<MoreNumbers>().add_stage_from_type::<Sum>();
    assert_eq!(
        problems(&pipeline),
        ["factory `Sum`, field `numbers`: ambiguous input: `Vec<i64>` is delivered by `Numbers` and `MoreNumbers`; \
          fix: name one with `#[delivery(producer = ..)]`, or give the outputs distinct ids"]
    );
}

#[test]
fn a_declared_producer_disambiguates() {
    let mut pipeline = setl().new_pipeline();
    pipeline
        .add_stage_from_type::<Numbers>()
        .add_stage_from_type::<MoreNumbers>()
        .add_stage_from_type::<SumOfNumbers>();
    pipeline.run().unwrap();
    assert_eq!(*pipeline.output::<SumOfNumbers>().unwrap(), 3);
}

#[test]
fn a_declared_producer_absent_from_the_pipeline_is_reported_even_with_another_candidate() {
    // SETL takes the only candidate without checking its producer; setl-rs always checks.
    let mut pipeline = setl().new_pipeline();
    pipeline.add_stage_from_type::<MoreNumbers>().add_stage_from_type::<SumOfNumbers>();
    assert_eq!(
        problems(&pipeline),
        ["factory `SumOfNumbers`, field `numbers`: producer `Numbers` of `Vec<i64>` is not in the pipeline; \
          fix: add it with `add_stage_from_type::<Numbers>()` or `add_factory(..)`"]
    );
}

#[test]
fn a_consumer_outside_the_producers_consumer_list_is_refused() {
    let mut pipeline = setl().new_pipeline();
    pipeline.add_stage_from_type::<Vault>().add_stage_from_type::<Auditor>().add_stage_from_type::<Thief>();
    assert_eq!(
        problems(&pipeline),
        ["factory `Thief`, field `secret`: `Vault` delivers `u32` with id \"secret\" only to `Auditor`; \
          fix: add `Thief` to its consumers"]
    );
}

#[test]
fn an_external_input_restricted_to_a_consumer_is_refused_to_others() {
    let mut pipeline = setl().new_pipeline();
    pipeline.set_input(vec![1_i64]).for_consumer::<SumOfNumbers>();
    pipeline.add_stage_from_type::<Sum>();
    assert_eq!(
        problems(&pipeline),
        ["factory `Sum`, field `numbers`: the external input delivers `Vec<i64>` only to `SumOfNumbers`; \
          fix: add `Sum` to its consumers"]
    );
}

#[test]
fn a_cycle_is_printed_as_its_path() {
    let mut pipeline = setl().new_pipeline();
    pipeline.add_stage_from_type::<CycleA>().add_stage_from_type::<CycleB>().add_stage_from_type::<CycleC>();
    assert_eq!(
        problems(&pipeline),
        ["cycle: `CycleA` -> `CycleB` -> `CycleC` -> `CycleA`; fix: remove one of these deliveries"]
    );
}

#[test]
fn the_same_factory_type_twice_is_refused() {
    let mut pipeline = setl().new_pipeline();
    pipeline.add_stage_from_type::<Numbers>().add_stage(Stage::new().add_factory(Numbers));
    assert_eq!(
        problems(&pipeline),
        ["factory `Numbers` is added twice (stages 0 and 1), which makes its output ambiguous; \
          fix: add it once (its output reaches consumers in every stage), or give each instance its own id with \
          `.with_id(..)`"]
    );
}

#[test]
fn two_instances_of_one_type_with_the_same_id_are_refused() {
    let mut pipeline = setl().new_pipeline();
    pipeline.add_stage(Stage::new().add_factory(Numbers.with_id("a")).add_factory(Numbers.with_id("a")));
    assert_eq!(
        problems(&pipeline),
        ["factory `Numbers[a]` is added twice with id \"a\" (stages 0 and 0), which makes its output ambiguous; \
          fix: add it once (its output reaches consumers in every stage), or give each instance its own id with \
          `.with_id(..)`"]
    );
}

/// Takes the `Vec<i64>` with id "left" and the one with id "right", both from `Numbers`.
#[factory]
#[derive(Default)]
struct LeftMinusRight {
    #[delivery(producer = Numbers, id = "left")]
    left: Delivery<Vec<i64>>,
    #[delivery(producer = Numbers, id = "right")]
    right: Delivery<Vec<i64>>,
}
impl Factory for LeftMinusRight {
    type Output = i64;
    fn get(&self) -> i64 {
        self.left.get().iter().sum::<i64>() - self.right.get().iter().sum::<i64>()
    }
}

#[test]
fn instances_of_one_type_with_distinct_ids_feed_consumers_by_id() {
    let mut pipeline = setl().new_pipeline();
    pipeline
        .add_stage(Stage::new().add_factory(Numbers.with_id("left")).add_factory(Numbers.with_id("right")))
        .add_stage_from_type::<LeftMinusRight>();
    pipeline.keep_output::<Numbers>();
    pipeline.run().unwrap();
    assert_eq!(*pipeline.output::<LeftMinusRight>().unwrap(), 0);
    assert_eq!(*pipeline.output_with_id::<Numbers>("left").unwrap(), [1, 2, 3]);
    let ambiguous = pipeline.output::<Numbers>().unwrap_err();
    assert_eq!(
        ambiguous.to_string(),
        "factory `Numbers` is in this pipeline 2 times, with ids \"left\", \"right\"; \
         fix: ask for one with `output_with_id::<Numbers>(id)`"
    );
    let names: Vec<&str> = pipeline.factories().map(|signature| &*signature.name).collect();
    assert_eq!(names, ["Numbers[left]", "Numbers[right]", "LeftMinusRight"]);
    let mermaid = pipeline.to_mermaid();
    for line in ["class Numbers_left {", "  +id left", "LeftMinusRight <|-- Numbers_rightOutput : Input"] {
        assert!(mermaid.lines().any(|l| l == line), "`{line}` missing from:\n{mermaid}");
    }
}

#[test]
fn a_declared_producer_instance_with_another_id_is_suggested() {
    let mut pipeline = setl().new_pipeline();
    pipeline
        .add_stage(Stage::new().add_factory(Numbers.with_id("left")).add_factory(Numbers.with_id("middle")))
        .add_stage_from_type::<LeftMinusRight>();
    assert_eq!(
        problems(&pipeline),
        ["factory `LeftMinusRight`, field `right`: no delivery of `Vec<i64>` with id \"right\" from `Numbers`; \
          did you mean `Numbers[left]` (id \"left\") and `Numbers[middle]` (id \"middle\")?"]
    );
}

#[test]
fn an_input_rebound_to_another_id_takes_that_delivery() {
    let mut pipeline = setl().new_pipeline();
    pipeline
        .add_stage(Stage::new().add_factory(Numbers.with_id("left")).add_factory(MoreNumbers.with_id("more")))
        .add_stage(Stage::new().add_factory(Sum::default().with_input_id("numbers", "more")));
    pipeline.run().unwrap();
    assert_eq!(*pipeline.output::<Sum>().unwrap(), 9);
}

#[test]
fn rebinding_a_field_that_is_not_an_input_is_reported() {
    let mut pipeline = setl().new_pipeline();
    pipeline.add_stage_from_type::<Numbers>().add_factory(Sum::default().with_input_id("nubmers", "x"));
    assert_eq!(
        problems(&pipeline),
        ["factory `Sum`: `with_input_id(\"nubmers\", ..)` names no input; fix: use one of `numbers`"]
    );
}

#[test]
fn two_external_inputs_of_one_type_and_id_are_refused() {
    let mut pipeline = setl().new_pipeline();
    pipeline.set_input(1_i64).with_id("offset");
    pipeline.set_input(2_i64).with_id("offset");
    pipeline.add_stage_from_type::<NeedsOffset>();
    assert_eq!(
        problems(&pipeline),
        ["two external inputs of `i64` with id \"offset\"; fix: give each a distinct id with `.with_id(..)`"]
    );
}

#[test]
fn every_problem_is_reported_at_once_and_nothing_runs() {
    let mut pipeline = setl().new_pipeline();
    pipeline
        .add_stage_from_type::<Sum>()
        .add_stage_from_type::<NeedsOffset>()
        .add_stage_from_type::<Thief>()
        .add_stage_from_type::<Vault>()
        .add_stage_from_type::<Auditor>();
    let error = pipeline.run().unwrap_err();
    let ErrorKind::Validation(problems) = error.kind() else { panic!("expected a validation error: {error:?}") };
    assert_eq!(problems.len(), 3);
    assert!(matches!(problems[0], ValidationError::MissingInput { .. }));
    assert!(matches!(problems[1], ValidationError::MissingInput { .. }));
    assert!(matches!(problems[2], ValidationError::ConsumerNotAllowed { .. }));
    let text = error.to_string();
    assert!(text.starts_with("the pipeline is not valid (3 problems):\n  1. factory `Sum`"), "{text}");
    // Nothing ran: outputs are not available.
    assert!(matches!(pipeline.output::<Vault>().unwrap_err().kind(), ErrorKind::NotRun { .. }));
}

#[test]
fn stage_barrier_mode_refuses_a_consumer_before_its_producer() {
    let mut pipeline = setl().new_pipeline();
    pipeline.mode(ExecutionMode::StageBarrier);
    pipeline.add_stage_from_type::<SumOfNumbers>().add_stage_from_type::<Numbers>();
    assert_eq!(
        problems(&pipeline),
        ["factory `SumOfNumbers`, field `numbers`: producer `Numbers` is in stage 1, not before stage 0; \
          stage-barrier mode runs stages in order, so move `Numbers` to an earlier stage or use dataflow mode"]
    );
}

#[test]
fn stage_barrier_mode_refuses_a_dependency_inside_one_stage() {
    let mut pipeline = setl().new_pipeline();
    pipeline.mode(ExecutionMode::StageBarrier);
    pipeline.add_stage(Stage::new().add_factory(Numbers).add_factory(SumOfNumbers::default()));
    assert_eq!(problems(&pipeline).len(), 1);
}

#[test]
fn dataflow_mode_runs_a_consumer_declared_before_its_producer_and_in_its_stage() {
    // SETL and PySetl refuse both; dataflow order makes declaration order irrelevant.
    let mut pipeline = setl().new_pipeline();
    pipeline.add_stage(Stage::new().add_factory(SumOfNumbers::default()).add_factory(Numbers));
    pipeline.run().unwrap();
    assert_eq!(*pipeline.output::<SumOfNumbers>().unwrap(), 3);
}

#[test]
fn two_inputs_of_one_type_with_distinct_ids_resolve() {
    #[factory]
    #[derive(Default)]
    struct Difference {
        #[delivery(id = "left")]
        left: Delivery<i64>,
        #[delivery(id = "right")]
        right: Delivery<i64>,
    }
    impl Factory for Difference {
        type Output = i64;
        fn get(&self) -> i64 {
            self.left.get() - self.right.get()
        }
    }
    let mut pipeline = setl().new_pipeline();
    pipeline.set_input(10_i64).with_id("left");
    pipeline.set_input(3_i64).with_id("right");
    pipeline.add_stage_from_type::<Difference>();
    pipeline.run().unwrap();
    assert_eq!(*pipeline.output::<Difference>().unwrap(), 7);
}

#[test]
fn an_optional_input_stays_empty_when_nothing_produces_it() {
    #[factory]
    #[derive(Default)]
    struct WithBonus {
        #[delivery(id = "bonus", optional)]
        bonus: Delivery<i64>,
        #[delivery(producer = Numbers, optional)]
        numbers: Delivery<Vec<i64>>,
    }
    impl Factory for WithBonus {
        type Output = (Option<i64>, bool);
        fn get(&self) -> (Option<i64>, bool) {
            (self.bonus.try_get().copied(), self.numbers.is_filled())
        }
    }
    let mut pipeline = setl().new_pipeline();
    pipeline.add_stage_from_type::<WithBonus>();
    pipeline.run().unwrap();
    assert_eq!(*pipeline.output::<WithBonus>().unwrap(), (None, false));

    let mut pipeline = setl().new_pipeline();
    pipeline.set_input(7_i64).with_id("bonus");
    pipeline.add_stage_from_type::<Numbers>().add_stage_from_type::<WithBonus>();
    pipeline.run().unwrap();
    assert_eq!(*pipeline.output::<WithBonus>().unwrap(), (Some(7), true));
}

#[test]
fn an_instance_leaves_out_an_optional_input_and_does_not_depend_on_its_producer() {
    /// One type for steps that take some of the inputs it knows.
    #[factory]
    #[derive(Default)]
    struct Pick {
        #[delivery(producer = Numbers, optional)]
        numbers: Delivery<Vec<i64>>,
        #[delivery(producer = Follow, optional)]
        follow: Delivery<Vec<i64>>,
    }
    impl Factory for Pick {
        type Output = (bool, bool);
        fn get(&self) -> (bool, bool) {
            (self.numbers.is_filled(), self.follow.is_filled())
        }
    }
    /// Consumes the first `Pick`: were that one to take `follow`, the two would form a cycle.
    #[factory]
    #[derive(Default)]
    struct Follow {
        #[delivery(producer = Pick, id = "first")]
        first: Delivery<(bool, bool)>,
    }
    impl Factory for Follow {
        type Output = Vec<i64>;
        fn get(&self) -> Vec<i64> {
            vec![i64::from(self.first.get().0)]
        }
    }
    let mut pipeline = setl().new_pipeline();
    pipeline.keep_all_outputs(true);
    pipeline
        .add_stage_from_type::<Numbers>()
        .add_factory(Pick::default().with_id("first").without_input("follow"))
        .add_stage_from_type::<Follow>()
        .add_factory(Pick::default().with_id("second"));
    pipeline.run().unwrap();
    assert_eq!(*pipeline.output_with_id::<Pick>("first").unwrap(), (true, false));
    assert_eq!(*pipeline.output_with_id::<Pick>("second").unwrap(), (true, true));

    // Without it, the first `Pick` takes `Follow`'s output, which needs the first `Pick`.
    let mut pipeline = setl().new_pipeline();
    pipeline
        .add_stage_from_type::<Numbers>()
        .add_factory(Pick::default().with_id("first"))
        .add_stage_from_type::<Follow>();
    let error = pipeline.run().unwrap_err();
    assert!(
        error
            .validation_errors()
            .is_some_and(|errors| errors.iter().any(|e| matches!(e, ValidationError::Cycle { .. }))),
        "{error}"
    );
}

#[test]
fn leaving_out_a_required_input_or_a_field_that_is_not_an_input_is_reported() {
    let mut pipeline = setl().new_pipeline();
    pipeline
        .add_stage_from_type::<Numbers>()
        .add_factory(Sum::default().without_input("numbers"))
        .add_factory(SumOfNumbers::default().without_input("nubmers"));
    assert_eq!(
        problems(&pipeline),
        [
            "factory `Sum`, field `numbers`: `without_input(\"numbers\")` leaves out an input that is not optional; \
             fix: declare it `#[delivery(.., optional)]` and read it with `try_get()`, or keep it wired",
            "factory `SumOfNumbers`: `without_input(\"nubmers\")` names no input; fix: use one of `numbers`"
        ]
    );
}

#[test]
fn falsy_primitive_payloads_are_delivered() {
    // PySetl rejects payloads such as 0 or "".
    #[factory]
    #[derive(Default)]
    struct Echo {
        #[delivery]
        zero: Delivery<i64>,
        #[delivery]
        empty: Delivery<String>,
    }
    impl Factory for Echo {
        type Output = String;
        fn get(&self) -> String {
            format!("{}{}", self.zero.get(), self.empty.get())
        }
    }
    let mut pipeline = setl().new_pipeline();
    pipeline.set_input(0_i64);
    pipeline.set_input(String::new());
    pipeline.add_stage_from_type::<Echo>();
    pipeline.run().unwrap();
    assert_eq!(*pipeline.output::<Echo>().unwrap(), "0");
}

#[test]
fn a_delivery_naming_the_consumer_wins_over_an_open_one() {
    // SETL's dispatcher rule: among several candidates, the one whose consumer list names the
    // consumer is taken.
    #[factory]
    #[derive(Default)]
    struct Listener {
        #[delivery]
        value: Delivery<u32>,
    }
    impl Factory for Listener {
        type Output = u32;
        fn get(&self) -> u32 {
            *self.value.get()
        }
    }
    let mut pipeline = setl().new_pipeline();
    pipeline.set_input(1_u32);
    pipeline.add_stage_from_type::<Listener>();
    // Another input with the same type and id but restricted to Listener would be a duplicate
    // input; a producer's output restricted to the consumer is the real case:
    #[factory(consumers(Listener))]
    #[derive(Default)]
    struct Reserved;
    impl Factory for Reserved {
        type Output = u32;
        fn get(&self) -> u32 {
            2
        }
    }
    pipeline.add_stage_from_type::<Reserved>();
    pipeline.run().unwrap();
    assert_eq!(*pipeline.output::<Listener>().unwrap(), 2);
}

#[test]
fn a_declared_producer_with_another_output_id_is_suggested() {
    #[factory(id = "raw")]
    #[derive(Default)]
    struct RawNumbers;
    impl Factory for RawNumbers {
        type Output = Vec<u8>;
        fn get(&self) -> Vec<u8> {
            vec![1]
        }
    }
    #[factory]
    #[derive(Default)]
    struct Clean {
        #[delivery(producer = RawNumbers, id = "clean")]
        raw: Delivery<Vec<u8>>,
    }
    impl Factory for Clean {
        type Output = Vec<u16>;
        fn get(&self) -> Vec<u16> {
            self.raw.get().iter().map(|&b| u16::from(b)).collect()
        }
    }
    let mut pipeline = setl().new_pipeline();
    pipeline.add_stage_from_type::<RawNumbers>().add_stage_from_type::<Clean>();
    assert_eq!(
        problems(&pipeline),
        ["factory `Clean`, field `raw`: no delivery of `Vec<u8>` with id \"clean\" from `RawNumbers`; \
          did you mean `RawNumbers` (id \"raw\")?"]
    );
}

/// A link of a long chain: adds one to its input.
#[factory]
#[derive(Default)]
struct Link {
    #[delivery]
    prev: Delivery<u64>,
    value: u64,
}
impl Factory for Link {
    type Output = u64;
    fn process(&mut self) -> Result<()> {
        self.value = *self.prev.get() + 1;
        Ok(())
    }
    fn get(&self) -> u64 {
        self.value
    }
}

/// A chain of `count` links on `threads` threads; the links in `broken` point at ids nobody
/// delivers, and every 1000th link is added twice.
fn long_chain(threads: usize, count: usize, broken: &[usize], duplicated: bool) -> Pipeline {
    let setl = Setl::builder().threads(threads).build().unwrap();
    let mut pipeline = setl.new_pipeline();
    pipeline.set_input(0_u64).with_id("link-start");
    let mut stage = Stage::new();
    for index in 0..count {
        let prev = match index {
            _ if broken.contains(&index) => format!("nowhere-{index}"),
            0 => "link-start".to_owned(),
            _ => format!("link-{}", index - 1),
        };
        let id = format!("link-{index}");
        stage = stage.add_factory(Link::default().with_id(&id).with_input_id("prev", &prev));
        if duplicated && index % 1000 == 999 {
            stage = stage.add_factory(Link::default().with_id(&id).with_input_id("prev", &prev));
        }
    }
    pipeline.add_stage(stage);
    pipeline
}

#[test]
fn a_large_pipeline_resolved_in_parallel_gives_the_sequential_plan_and_errors() {
    // Above the size from which validation splits the work over the pool.
    let count = 5_000;
    let broken = [17, 2_600, 4_999];
    let sequential = problems(&long_chain(1, count, &broken, true));
    let parallel = problems(&long_chain(2, count, &broken, true));
    // Five duplicates, then the three broken links (the second `link-4999` too).
    let short: Vec<String> = sequential.iter().map(|problem| problem.chars().take(100).collect()).collect();
    assert_eq!(sequential.len(), 5 + 4, "{short:#?}");
    assert_eq!(parallel, sequential);
    assert!(parallel[1].starts_with("factory `Link[link-1999]` is added twice"), "{}", parallel[1]);
    assert!(parallel[5].starts_with(
        "factory `Link[link-17]`, field `prev`: no delivery of `u64` with id \"nowhere-17\" from any factory or external input; did you mean `Link[link-0]`"
    ));
    assert!(parallel[6].contains("`Link[link-2600]`"), "{}", short[6]);

    let mut pipeline = long_chain(2, count, &[], false);
    pipeline.run().unwrap();
    assert_eq!(*pipeline.output_with_id::<Link>(&format!("link-{}", count - 1)).unwrap(), count as u64);
}

#[test]
fn problems_of_single_factories_come_in_declaration_order() {
    let mut pipeline = setl().new_pipeline();
    pipeline.add_stage(
        Stage::new()
            .add_factory(Numbers)
            .add_factory(Numbers)
            .add_factory(MoreNumbers.with_input_id("nope", "x"))
            .add_factory(Numbers.with_id("other").with_input_id("gone", "y")),
    );
    let problems = problems(&pipeline);
    let starts: Vec<&str> =
        problems.iter().map(|problem| &problem[..problem.find(':').unwrap_or(problem.len())]).collect();
    assert_eq!(
        starts,
        [
            "factory `Numbers` is added twice (stages 0 and 0), which makes its output ambiguous; fix",
            "factory `MoreNumbers`",
            "factory `Numbers[other]`",
        ],
        "{problems:#?}"
    );
}
