//! `completions SHELL` and `man`: generated from the clap definition in `cli.rs`, so they can
//! never disagree with `--help`.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::console;
use crate::exit_codes::ExitCode;

/// Prints the completion script for `shell` on stdout.
pub(crate) fn completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    let mut cmd = Cli::command();
    let name = cmd.get_name().to_string();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut out);
    console::write_out_bytes(&out);
    Ok(ExitCode::Success)
}

/// Prints the man page (roff) on stdout: the tool's page with a section per subcommand.
pub(crate) fn man() -> anyhow::Result<ExitCode> {
    let mut out = Vec::new();
    write_man(&mut out)?;
    console::write_out_bytes(&out);
    Ok(ExitCode::Success)
}

fn write_man(out: &mut Vec<u8>) -> anyhow::Result<()> {
    use clap_mangen::roff::{Roff, bold, italic, roman};

    let cmd = Cli::command();
    let page = clap_mangen::Man::new(cmd.clone());
    page.render_title(out)?;
    page.render_name_section(out)?;
    page.render_synopsis_section(out)?;
    page.render_description_section(out)?;
    page.render_options_section(out)?;
    page.render_subcommands_section(out)?;
    let mut roff = Roff::new();
    // The top-level help's examples (clap_mangen would title them EXTRA).
    if let Some(after) = cmd.get_after_long_help().or(cmd.get_after_help()) {
        roff.control("SH", ["EXAMPLES"]);
        after_help(&mut roff, &after.to_string());
    }
    // One section per subcommand, with its options: that is where the real manual is (the
    // generated page lists subcommands by name only).
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let title = format!("{} {}", cmd.get_name(), sub.get_name());
        roff.control("SH", [title.to_uppercase().as_str()]);
        if let Some(about) = sub.get_long_about().or(sub.get_about()) {
            roff.text([roman(about.to_string())]);
        }
        let args = sub
            .get_arguments()
            .filter(|a| !a.is_hide_set() && a.get_id() != "help");
        for arg in args {
            roff.control("TP", []);
            let value = arg
                .get_value_names()
                .map(|v| v.iter().map(|n| format!(" <{n}>")).collect::<String>())
                .unwrap_or_default();
            let mut line = Vec::new();
            match (arg.get_short(), arg.get_long()) {
                (Some(s), Some(l)) => line.push(bold(format!("-{s}, --{l}"))),
                (None, Some(l)) => line.push(bold(format!("--{l}"))),
                (Some(s), None) => line.push(bold(format!("-{s}"))),
                (None, None) => line.push(italic(arg.get_id().as_str().to_uppercase())),
            }
            if arg.get_long().is_some() || arg.get_short().is_some() {
                line.push(italic(value));
            }
            roff.text(line);
            let help = arg
                .get_long_help()
                .or(arg.get_help())
                .map(|h| h.to_string())
                .unwrap_or_default();
            roff.text([roman(help)]);
        }
        if let Some(after) = sub.get_after_long_help().or(sub.get_after_help()) {
            roff.control("PP", []);
            after_help(&mut roff, &after.to_string());
        }
    }
    roff.to_writer(out)?;
    page.render_version_section(out)?;
    Ok(())
}

/// Help text laid out as written: examples are aligned by hand, so no filling.
fn after_help(roff: &mut clap_mangen::roff::Roff, text: &str) {
    roff.control("nf", []);
    for line in text.lines() {
        roff.text([clap_mangen::roff::roman(line.to_string())]);
    }
    roff.control("fi", []);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_man_page_names_every_command() {
        let mut out = Vec::new();
        write_man(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        for name in ["VALIDATE", "RUN", "REPORT", "SIM", "COMPLETIONS", "MAN"] {
            assert!(
                text.contains(&format!(".SH \"DS100-OFFBOARD {name}\"")),
                "{name} missing"
            );
        }
        assert!(text.contains("dry\\-run"), "run's flags are documented");
    }
}
