//! Engine tests: termination, extension, repair, and the worked evaluation example.

use serde_json::json;

use super::*;
use crate::domain::{Action, Catalog, Outcome, Scenario, TurnOutput};

fn scenario(file: &str) -> Scenario {
    let text = match file {
        "01" => include_str!("../../data/scenarios/01-seller-snacks-vs-retailer.json"),
        _ => include_str!("../../data/scenarios/03-seller-all-personalities-matrix.json"),
    };
    let value: serde_json::Value = serde_json::from_str(text).expect("scenario json");
    let input = crate::scenario_file::input_from_file(&value).expect("scenario shape");
    input.validate(&Catalog::builtin()).expect("valid scenario")
}

fn turn(negotiation: &Negotiation, action: Action, offer: &[(&str, f64)]) -> TurnRecord {
    let next = negotiation.next_turn().expect("a next turn");
    TurnRecord {
        turn: next.turn,
        round: next.round,
        speaker: next.speaker,
        output: TurnOutput {
            message: "m".into(),
            action,
            offer: offer.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            confidence: 0.5,
            internal_analysis: String::new(),
            batna_assessment: 0.5,
            walk_away_threshold: 0.3,
        },
        usage: TokenUsage::default(),
        cost_usd: 0.0,
        repairs: 0,
        reasks: 0,
    }
}

#[test]
fn worked_example_scores_as_the_original_formulas() {
    let scenario = scenario("03");
    let mut negotiation = Negotiation::new(&scenario);
    let seller_1 = [
        ("Chocolate Bar 50g", 1.2),
        ("Price per unit", 1.2),
        ("Volume per month", 1000.0),
        ("Payment terms", 45.0),
    ];
    let buyer_1 = [
        ("Chocolate Bar 50g", 1.05),
        ("Price per unit", 1.05),
        ("Volume per month", 1100.0),
        ("Payment terms", 60.0),
    ];
    let seller_2 = [
        ("Chocolate Bar 50g", 1.15),
        ("Price per unit", 1.15),
        ("Volume per month", 1050.0),
        ("Payment terms", 45.0),
    ];
    for (action, offer) in [
        (Action::Continue, &seller_1[..]),
        (Action::Continue, &buyer_1[..]),
        (Action::Continue, &seller_2[..]),
    ] {
        let t = turn(&negotiation, action, offer);
        assert_eq!(negotiation.record(t), None);
    }
    let accept = turn(&negotiation, Action::Accept, &[]);
    assert_eq!(negotiation.record(accept), Some(Outcome::DealAccepted));
    assert_eq!(negotiation.rounds(), 2);

    let evaluation = evaluate(&scenario, Outcome::DealAccepted, negotiation.final_offer());
    assert_eq!(evaluation.deal_value, Some(115_000.0));
    let product = &evaluation.products[0];
    assert_eq!(product.agreed_price, 1.15);
    assert_eq!(product.price_vs_target_pct, 4.55);
    assert_eq!(product.subtotal, 115_000.0);
    assert_eq!(product.target_subtotal, 110_000.0);
    assert_eq!(product.performance_score, 95.45);
    assert!(product.within_limit);
    let volume = &evaluation.dimensions[1];
    assert_eq!(
        (volume.final_value, volume.within_bounds, volume.priority),
        (1050.0, true, 2)
    );
}

#[test]
fn walk_away_and_terminate_end_the_run() {
    let scenario = scenario("01");
    for (action, outcome) in [
        (Action::WalkAway, Outcome::WalkAway),
        (Action::Terminate, Outcome::Terminated),
    ] {
        let mut negotiation = Negotiation::new(&scenario);
        let t = turn(&negotiation, action, &[]);
        assert_eq!(negotiation.record(t), Some(outcome));
        assert!(negotiation.next_turn().is_none());
        let evaluation = evaluate(&scenario, outcome, negotiation.final_offer());
        assert_eq!(evaluation.deal_value, None);
    }
}

#[test]
fn run_ends_at_the_round_limit_without_convergence() {
    let scenario = scenario("01");
    let mut negotiation = Negotiation::new(&scenario);
    let mut outcome = None;
    while let Some(next) = negotiation.next_turn() {
        let price = if next.speaker == Speaker::User {
            2.0
        } else {
            1.0
        };
        let t = turn(
            &negotiation,
            Action::Continue,
            &[("Chocolate Bar 50g", price)],
        );
        outcome = negotiation.record(t);
    }
    assert_eq!(outcome, Some(Outcome::MaxRoundsReached));
    assert_eq!(negotiation.rounds(), scenario.max_rounds);
}

#[test]
fn converging_offers_extend_the_limit_by_three_rounds_once() {
    let scenario = scenario("01");
    let mut negotiation = Negotiation::new(&scenario);
    while let Some(next) = negotiation.next_turn() {
        let price = if next.speaker == Speaker::User {
            1.10
        } else {
            1.05
        };
        let t = turn(
            &negotiation,
            Action::Continue,
            &[("Chocolate Bar 50g", price)],
        );
        negotiation.record(t);
    }
    assert_eq!(negotiation.round_limit(), scenario.max_rounds + 3);
    assert_eq!(negotiation.rounds(), scenario.max_rounds + 3);
    assert_eq!(negotiation.outcome(), Some(Outcome::MaxRoundsReached));
}

#[test]
fn repair_clamps_fills_and_refuses_an_early_accept() {
    let scenario = scenario("01");
    let terms = Terms::for_speaker(&scenario, Speaker::User);
    let raw = json!({
        "message": "hello",
        "action": "accept",
        "offer": {"Chocolate Bar 50g": 9.0, "Protein Biscuit 80g": "cheap"},
        "confidence": 1.7,
    });
    let repaired = repair_turn(&raw, &terms, None, false).expect("repairable");
    assert_eq!(repaired.output.action, Action::Continue);
    assert_eq!(repaired.output.offer["Chocolate Bar 50g"], 1.35);
    assert_eq!(repaired.output.offer["Protein Biscuit 80g"], 2.2);
    assert_eq!(repaired.output.confidence, 1.0);
    assert!(repaired.repairs >= 4);
    assert!(repair_turn(&json!(["no"]), &terms, None, false).is_err());
    assert!(repair_turn(&json!({"action": "continue"}), &terms, None, false).is_err());
}

#[test]
fn counterpart_sees_a_shifted_target_and_no_user_limit() {
    let scenario = scenario("01");
    let terms = Terms::for_speaker(&scenario, Speaker::Counterpart);
    let bar = terms.get("Chocolate Bar 50g").expect("product term");
    assert!((bar.target - 0.9775).abs() < 1e-9);
    assert_eq!(bar.bound.max, None);
}

#[test]
fn cost_follows_the_price_table() {
    let prices = PriceTable::default();
    let usage = TokenUsage {
        input: 1_000_000,
        output: 1_000_000,
    };
    assert!((prices.cost("gpt-4o-mini", usage) - 0.75).abs() < 1e-9);
    let estimate = cost::estimate_run_cost(&scenario("01"), &prices, "gpt-4o-mini");
    assert!(estimate > 0.0 && estimate < 0.1, "estimate {estimate}");
}
