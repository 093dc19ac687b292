//! The list of scenarios, their tags and stated outcomes, and the runners.

use futures_util::future::BoxFuture;

use super::target::{Ctx, Target, TargetKind};
use super::{chaining, faults, lanes, policy};
use crate::Failure;

/// A scenario body: takes its context, returns `Ok` or a readable failure.
pub type ScenarioFn = fn(Ctx) -> BoxFuture<'static, Result<(), Failure>>;

/// Restricts where a scenario runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    /// Gateway policy (limits, admission): meaningless against a bare upstream.
    GatewayOnly,
}

/// The client-visible outcome a scenario asserts, per target kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// What a client sees talking to the upstream directly.
    pub upstream: &'static str,
    /// What a client sees through a gateway.
    pub gateway: &'static str,
}

/// One conformance scenario.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Unique name; also the key of the per-scenario account hook.
    pub name: &'static str,
    /// Where it runs.
    pub tags: &'static [Tag],
    /// What it asserts.
    pub outcome: Outcome,
    /// The body.
    pub run: ScenarioFn,
}

impl Scenario {
    /// Whether the scenario runs against this kind of target.
    pub fn applies_to(&self, kind: TargetKind) -> bool {
        !(kind == TargetKind::Upstream && self.tags.contains(&Tag::GatewayOnly))
    }
}

/// Every scenario, in a stable order.
pub fn scenarios() -> Vec<Scenario> {
    let mut all = Vec::new();
    all.extend(chaining::SCENARIOS.iter().copied());
    all.extend(lanes::SCENARIOS.iter().copied());
    all.extend(faults::SCENARIOS.iter().copied());
    all.extend(policy::SCENARIOS.iter().copied());
    all
}

/// Runs one scenario by name; a name that does not exist, or is tagged away from this target kind,
/// is a failure (so a typo cannot turn into a silently passing test).
pub async fn run_scenario(target: &Target, name: &str) -> Result<(), Failure> {
    let scenario = scenarios()
        .into_iter()
        .find(|s| s.name == name)
        .ok_or_else(|| Failure::new(format!("no scenario named {name}")))?;
    if !scenario.applies_to(target.kind) {
        return Err(Failure::new(format!(
            "scenario {name} does not apply to a {} target",
            target.kind
        )));
    }
    let outcome = match target.kind {
        TargetKind::Upstream => scenario.outcome.upstream,
        TargetKind::Gateway => scenario.outcome.gateway,
    };
    (scenario.run)(Ctx::new(target, scenario.name))
        .await
        .map_err(|f| f.context(&format!("{name} [{}: {outcome}]", target.kind)))
}

/// Runs every scenario that applies to the target, one after another; returns each result.
pub async fn run_all(target: &Target) -> Vec<(&'static str, Result<(), Failure>)> {
    let mut results = Vec::new();
    for scenario in scenarios()
        .into_iter()
        .filter(|s| s.applies_to(target.kind))
    {
        results.push((scenario.name, run_scenario(target, scenario.name).await));
    }
    results
}
