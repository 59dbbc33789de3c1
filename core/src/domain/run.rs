//! Run and batch states, run outcomes, and the turn record every run is made of.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!("unknown {} '{other}'", stringify!($name))),
                }
            }
        }
    };
}

string_enum!(
    /// Where a run stands in its lifecycle (design section 5).
    RunStatus {
        Pending => "pending",
        Queued => "queued",
        Running => "running",
        RetryWait => "retry_wait",
        Completed => "completed",
        Failed => "failed",
        Stopped => "stopped",
    }
);

impl RunStatus {
    /// A final run is never run again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RunStatus::Completed | RunStatus::Failed | RunStatus::Stopped
        )
    }
}

string_enum!(
    /// Where a batch stands.
    BatchStatus {
        Pending => "pending",
        Running => "running",
        Paused => "paused",
        Completed => "completed",
        Stopped => "stopped",
        Failed => "failed",
    }
);

string_enum!(
    /// How a completed run ended.
    Outcome {
        DealAccepted => "DEAL_ACCEPTED",
        WalkAway => "WALK_AWAY",
        Terminated => "TERMINATED",
        MaxRoundsReached => "MAX_ROUNDS_REACHED",
    }
);

string_enum!(
    /// Who speaks in a turn. The user's agent always opens a round.
    Speaker {
        User => "user",
        Counterpart => "counterpart",
    }
);

string_enum!(
    /// What an agent does with its turn.
    Action {
        Continue => "continue",
        Accept => "accept",
        WalkAway => "walk_away",
        Terminate => "terminate",
    }
);

/// An offer: one number per product price and per dimension, keyed by the scenario's names.
pub type Offer = BTreeMap<String, f64>;

/// The structured answer of one turn, after validation and repair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnOutput {
    pub message: String,
    pub action: Action,
    pub offer: Offer,
    pub confidence: f64,
    pub internal_analysis: String,
    pub batna_assessment: f64,
    pub walk_away_threshold: f64,
}

/// Tokens one call consumed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    pub input: u64,
    pub output: u64,
}

impl TokenUsage {
    pub fn total(&self) -> u64 {
        self.input + self.output
    }
}

impl std::ops::AddAssign for TokenUsage {
    fn add_assign(&mut self, rhs: Self) {
        self.input += rhs.input;
        self.output += rhs.output;
    }
}

/// One stored turn: the checkpoint unit, unique by `(run_id, turn)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnRecord {
    /// 1-based over the whole run.
    pub turn: u32,
    /// 1-based; a round is the user's turn then the counterpart's.
    pub round: u32,
    pub speaker: Speaker,
    pub output: TurnOutput,
    pub usage: TokenUsage,
    pub cost_usd: f64,
    /// How many values the engine had to clamp or fill in.
    pub repairs: u32,
    /// How often the model was asked again after an answer that could not be used.
    pub reasks: u32,
}
