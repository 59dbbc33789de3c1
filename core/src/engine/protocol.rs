//! The turn protocol: whose turn it is, when a run ends, and the round-limit extension.

use crate::domain::{Action, Offer, Outcome, Scenario, Speaker, TurnRecord};

/// Convergence: two offers agree on a term when they differ by less than this share.
const CONVERGENCE_THRESHOLD: f64 = 0.10;
/// Convergence: at least this share of shared terms must agree.
const MIN_CONVERGENCE_RATIO: f64 = 0.5;
/// Rounds added once when the offers converge at the round limit.
const EXTENSION_ROUNDS: u32 = 3;
/// An extension never takes a run past this many rounds.
const ABSOLUTE_MAX_ROUNDS: u32 = 20;

/// The turn the engine wants played next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextTurn {
    pub turn: u32,
    pub round: u32,
    pub speaker: Speaker,
}

/// A run's conversation so far and the rules that end it.
#[derive(Debug, Clone)]
pub struct Negotiation {
    round_limit: u32,
    extended: bool,
    turns: Vec<TurnRecord>,
    outcome: Option<Outcome>,
}

impl Negotiation {
    pub fn new(scenario: &Scenario) -> Self {
        Self {
            round_limit: scenario.max_rounds,
            extended: false,
            turns: Vec::new(),
            outcome: None,
        }
    }

    /// Rebuilds the state from stored turns, in order, as a resumed attempt does.
    pub fn replay(scenario: &Scenario, turns: impl IntoIterator<Item = TurnRecord>) -> Self {
        let mut negotiation = Self::new(scenario);
        for turn in turns {
            if negotiation.is_finished() {
                break;
            }
            negotiation.record(turn);
        }
        negotiation
    }

    pub fn next_turn(&self) -> Option<NextTurn> {
        if self.is_finished() {
            return None;
        }
        let index = self.turns.len() as u32;
        Some(NextTurn {
            turn: index + 1,
            round: index / 2 + 1,
            speaker: if index.is_multiple_of(2) {
                Speaker::User
            } else {
                Speaker::Counterpart
            },
        })
    }

    /// Whether the speaker of the next turn has an offer on the table it could accept.
    pub fn has_offer_to_accept(&self) -> bool {
        self.turns
            .last()
            .is_some_and(|t| !t.output.offer.is_empty())
    }

    /// Adds a played turn and applies the termination rules.
    pub fn record(&mut self, turn: TurnRecord) -> Option<Outcome> {
        let action = turn.output.action;
        let speaker = turn.speaker;
        let round = turn.round;
        self.turns.push(turn);
        self.outcome = match action {
            Action::Accept if self.turns.len() > 1 => Some(Outcome::DealAccepted),
            Action::WalkAway => Some(Outcome::WalkAway),
            Action::Terminate => Some(Outcome::Terminated),
            _ if speaker == Speaker::Counterpart && round >= self.round_limit => {
                self.extend_or_end()
            }
            _ => None,
        };
        self.outcome
    }

    pub fn is_finished(&self) -> bool {
        self.outcome.is_some()
    }

    pub fn outcome(&self) -> Option<Outcome> {
        self.outcome
    }

    pub fn turns(&self) -> &[TurnRecord] {
        &self.turns
    }

    pub fn round_limit(&self) -> u32 {
        self.round_limit
    }

    /// The highest round reached.
    pub fn rounds(&self) -> u32 {
        self.turns.last().map_or(0, |t| t.round)
    }

    /// The offer the run ends on: for a deal, the offer that was accepted.
    pub fn final_offer(&self) -> Option<&Offer> {
        let mut offers = self.turns.iter().rev().map(|t| &t.output.offer);
        if self.outcome == Some(Outcome::DealAccepted) {
            offers.nth(1)
        } else {
            offers.find(|o| !o.is_empty())
        }
    }

    fn extend_or_end(&mut self) -> Option<Outcome> {
        let extended_limit = (self.round_limit + EXTENSION_ROUNDS).min(ABSOLUTE_MAX_ROUNDS);
        if !self.extended && extended_limit > self.round_limit && self.last_offers_converge() {
            self.extended = true;
            self.round_limit = extended_limit;
            return None;
        }
        Some(Outcome::MaxRoundsReached)
    }

    fn last_offers_converge(&self) -> bool {
        let [.., earlier, latest] = self.turns.as_slice() else {
            return false;
        };
        offers_converge(&earlier.output.offer, &latest.output.offer)
    }
}

/// True when at least half of the shared terms differ by less than 10 %.
pub fn offers_converge(earlier: &Offer, latest: &Offer) -> bool {
    let shared: Vec<(f64, f64)> = earlier
        .iter()
        .filter_map(|(key, a)| latest.get(key).map(|b| (*a, *b)))
        .collect();
    if shared.is_empty() {
        return false;
    }
    let close = shared
        .iter()
        .filter(|(a, b)| {
            let scale = a.abs().max(f64::EPSILON);
            (a - b).abs() / scale < CONVERGENCE_THRESHOLD
        })
        .count();
    close as f64 / shared.len() as f64 >= MIN_CONVERGENCE_RATIO
}
