//! Process exit codes and how outcomes of parts of a run combine into one
//! (docs/design.md#exit-codes).

/// What the process reports to its caller. Ordered by severity: merging keeps the worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExitCode {
    /// Every row ended ok.
    Success,
    /// At least one row ended in a failure status.
    RowFailures,
    /// Usage, configuration or input-file error; nothing was sent.
    Usage,
    /// The safety stop fired (`--stop-after` consecutive failures).
    SafetyStop,
    /// Interrupted (Ctrl-C / SIGTERM).
    Interrupted,
}

impl ExitCode {
    pub(crate) fn code(self) -> u8 {
        match self {
            ExitCode::Success => 0,
            ExitCode::RowFailures => 1,
            ExitCode::Usage => 2,
            ExitCode::SafetyStop => 3,
            ExitCode::Interrupted => 130,
        }
    }

    /// The code of a run that had both outcomes: the more severe one wins.
    pub(crate) fn merge(self, other: ExitCode) -> ExitCode {
        self.max(other)
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code.code())
    }
}

#[cfg(test)]
mod tests {
    use super::ExitCode::*;

    #[test]
    fn codes_match_the_spec() {
        let codes: Vec<u8> = [Success, RowFailures, Usage, SafetyStop, Interrupted]
            .iter()
            .map(|c| c.code())
            .collect();
        assert_eq!(codes, [0, 1, 2, 3, 130]);
    }

    #[test]
    fn merge_keeps_the_worst() {
        assert_eq!(Success.merge(RowFailures), RowFailures);
        assert_eq!(RowFailures.merge(Success), RowFailures);
        assert_eq!(SafetyStop.merge(RowFailures), SafetyStop);
        assert_eq!(RowFailures.merge(Interrupted), Interrupted);
        assert_eq!(Success.merge(Success), Success);
    }
}
