//! A topological order with each factory's priority, or the cycle that prevents one.

use foldhash::{HashMap, HashMapExt};

use super::{FactoryDecl, Plan, Source};

/// Computes a topological order and each factory's priority, or finds a cycle.
pub(super) fn order(plan: &mut Plan, factories: &[FactoryDecl<'_>]) -> Result<(), Vec<String>> {
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
